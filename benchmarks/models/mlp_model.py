"""A CPU model of real cost, shared by the taichu-serve service and the MLServer
runtime of `benchmarks/real_model.py`: a three-layer perceptron in numpy whose batch
runs as one matrix product per layer (256 -> 1024 -> 1024 -> 16, FP32, ReLU)."""

import numpy as np

INPUTS = 256
HIDDEN = 1024
OUTPUTS = 16


class MLP:
    def __init__(self, seed: int = 0) -> None:
        generator = np.random.default_rng(seed)
        sizes = [INPUTS, HIDDEN, HIDDEN, OUTPUTS]
        self.layers = [
            (
                generator.standard_normal((n_in, n_out), dtype=np.float32)
                / np.float32(np.sqrt(n_in)),
                np.zeros(n_out, np.float32),
            )
            for n_in, n_out in zip(sizes, sizes[1:])
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: [batch, INPUTS] FP32 -> [batch, OUTPUTS] FP32."""
        for index, (weights, bias) in enumerate(self.layers):
            x = x @ weights + bias
            if index < len(self.layers) - 1:
                np.maximum(x, 0, out=x)
        return x
