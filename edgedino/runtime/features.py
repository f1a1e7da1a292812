"""What every consumer of a runtime gets back: dense features for frames, with where the time went. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Features:
    """Backbone outputs for N frames, plus per-stage milliseconds for the whole call."""

    cls: np.ndarray  # (N, D)
    patch_tokens: np.ndarray  # (N, h, w, D), as the backbone's final norm leaves them
    input_hw: tuple[int, int]  # the size the frames were resized to
    ms: dict[str, float] = field(default_factory=dict)  # "preprocess", "backbone"
    logits: np.ndarray | None = None  # a task head's output (see edgedino.runtime.task_head), None without one

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.patch_tokens.shape[1:3])

    def normalized(self) -> np.ndarray:
        """Patch tokens scaled to unit length along D: what cosine similarity needs."""
        norm = np.linalg.norm(self.patch_tokens, axis=-1, keepdims=True)
        return self.patch_tokens / np.maximum(norm, 1e-6)
