"""An LLM-style stream at the speed of the framework: every request is answered with
TOKENS tokens ("tok", default 64), each yielded as soon as the previous one is sent
(`python benchmarks/token_streams.py`)."""

import os

from taichu_serve import Service

TOKENS = int(os.environ.get("TOKENS", "64"))


class ModelService(Service):
    def _postprocess(self, data, context):
        return self.tokens()

    def tokens(self):
        for _ in range(TOKENS):
            yield "tok"
