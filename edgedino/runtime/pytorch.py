"""PyTorch checkpoints as a runtime, for machines that happen to have torch: any input size, fp32 eager.

The device side never needs this; it lets apps and benchmarks run a checkpoint before it is exported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.runtime.base import Runtime, require
from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD


class PyTorchRuntime(Runtime):
    kind = "pytorch"

    def __init__(self, path: Path, threads: int | None = None):
        self.torch = require("torch", extra="torch")
        from edgedino.checkpoints import load_backbone

        if threads:
            self.torch.set_num_threads(threads)
        self.path = path
        self.backbone = load_backbone(path)
        self.metadata = {"model": self.backbone.cfg.name, "stride": self.backbone.stride,
                         "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "target": "pytorch",
                         "precision": "fp32"}
        self.input_shape = (-1, 3, -1, -1)
        self.input_dtype = np.dtype(np.float32)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            out = self.backbone.forward_features(self.torch.from_numpy(self._check_input(x)))
        return {k: v.float().numpy() for k, v in out.items() if k in ("cls", "patch_tokens", "registers")}


def load(path: Path, threads: int | None = None) -> Runtime:
    return PyTorchRuntime(path, threads)
