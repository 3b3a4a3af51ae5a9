"""A fixed cost per _inference call, whatever its size (INFERENCE_MS, default 5 ms):
the model batching is made for.

Works batched (a list in, a list out) and unbatched; records the batch sizes."""

import os
import time

from taichu_serve import Service


class BatchedService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.batch_sizes = []
        self.cost = float(os.environ.get("INFERENCE_MS", "5")) / 1000

    def _preprocess(self, data, context):
        if "x" not in data:
            return None  # a stats request
        return float(data["x"][0])

    def _inference(self, batch, contexts):
        single = not isinstance(batch, list)
        items = [batch] if single else batch
        time.sleep(self.cost)
        self.batch_sizes.append(len(items))
        results = []
        for item in items:
            if item is not None and item < 0:
                results.append(ValueError(f"negative input {item}"))
            else:
                results.append(item)
        return results[0] if single else results

    def _postprocess(self, result, context):
        if result is None:
            return {"batch_sizes": self.batch_sizes}
        if isinstance(result, Exception):
            raise result
        return {"y": result * 2}
