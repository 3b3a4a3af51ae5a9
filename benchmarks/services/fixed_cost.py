"""An identity model whose _inference costs a fixed 5 ms per call, whatever its size:
for measuring dynamic batching (`python benchmarks/run.py --service fixed_cost ...`)."""

import time

from taichu_serve import Service


class ModelService(Service):
    def _inference(self, batch, contexts):
        time.sleep(0.005)
        return batch  # batched: the list back; unbatched: the one item back
