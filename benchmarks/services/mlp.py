"""The MLP of benchmarks/models/mlp_model.py as a service: one request is x [n, 256]
FP32, the answer y [n, 16]. With dynamic batching the batch's rows run as one matrix
product per layer (`python benchmarks/real_model.py`)."""

import numpy as np
from mlp_model import MLP

from taichu_serve import Service


class ModelService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.model = MLP()

    def _preprocess(self, data, context):
        return data["x"]

    def _inference(self, batch, contexts):
        if not isinstance(batch, list):  # batching off: one request's rows
            return self.model(batch)
        rows = self.model(np.concatenate(batch))
        ends = np.cumsum([len(x) for x in batch])
        return np.split(rows, ends[:-1])

    def _postprocess(self, result, context):
        return {"y": result}
