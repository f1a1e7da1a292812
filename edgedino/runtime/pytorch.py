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
        from edgedino.heads.store import backbone_for, read_head_file

        self.path = path
        head_file = read_head_file(path)  # a head file runs as its backbone + head, at the head's input size
        self.backbone = backbone_for(head_file) if head_file else load_backbone(path)
        self.head_module = head_file.head if head_file else None
        self.metadata = {"model": self.backbone.cfg.name, "weights": path.name, "stride": self.backbone.stride,
                         "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "target": "pytorch",
                         "precision": "fp32",
                         **({"head": head_file.head.cfg.info().to_dict()} if head_file else {})}
        self.input_shape = (-1, 3, *head_file.backbone.imgsz) if head_file else (-1, 3, -1, -1)
        self.input_dtype = np.dtype(np.float32)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            out = self.backbone.forward_features(self.torch.from_numpy(self._check_input(x)))
            if self.head_module is not None:
                out["logits"] = self.head_module(out["cls"], out["patch_tokens"])
        return {k: v.float().numpy() for k, v in out.items() if k in ("cls", "patch_tokens", "registers", "logits")}


def load(path: Path, threads: int | None = None) -> Runtime:
    return PyTorchRuntime(path, threads)
