"""Answers with the size of what it received, never the data: the response stays small
whatever the request, so a test of large requests measures their decoding only."""

import numpy as np

from taichu_serve import Service


class SizeService(Service):
    def _inference(self, data, context):
        if not isinstance(next(iter(data.values()), None), np.ndarray):
            return {"parameters": len(data)}  # a 2.x request: its parameters
        return {name: np.array([value.size]) for name, value in data.items()}
