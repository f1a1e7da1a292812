"""A task head's output on the device: what it predicts (metadata) and how to read its logits. Torch-free.

An artifact exported with `edgedino export --head` has a "logits" output and a "head" metadata entry:
classify -> logits (B, C); segment -> logits (B, h, w, C) at the patch grid, channels last like patch_tokens
(upsample to the frame with `segment_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgedino.errors import EdgeDinoError

TASKS = ("classify", "segment")
IGNORE = 255  # mask value for pixels without a label
BACKGROUND = "background"  # the class overlays leave unpainted (class 0 of `edgedino head samples`)


@dataclass(frozen=True)
class HeadInfo:
    """What a head predicts: the task, its class names and its kind (linear or mlp)."""

    task: str
    classes: tuple[str, ...]
    kind: str = "linear"

    @classmethod
    def from_metadata(cls, metadata: dict) -> HeadInfo | None:
        """The head recorded in an artifact's metadata, or None for a plain backbone."""
        head = metadata.get("head")
        if not head:
            return None
        return cls(head["task"], tuple(head["classes"]), head.get("kind", "linear"))

    def to_dict(self) -> dict:
        return {"task": self.task, "classes": list(self.classes), "kind": self.kind,
                "logits": "(B, C)" if self.task == "classify" else "(B, h, w, C) at the patch grid"}


def require_head(metadata: dict, path_name: str, task: str) -> HeadInfo:
    """The artifact's head, or an error saying how to make an artifact with one for `task`."""
    head = HeadInfo.from_metadata(metadata)
    if head is None or head.task != task:
        has = f"a {head.task} head" if head else "no head"
        raise EdgeDinoError(f"{path_name} has {has}; export one with a {task} head: "
                            f"edgedino head train --task {task} ... && edgedino export --head head.pth")
    return head


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits, numerically stable."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def segment_mask(logits: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """One image's (h, w, C) patch-grid logits -> (H, W) class indices, logits upsampled bilinearly first."""
    import cv2

    h, w = out_hw
    c = logits.shape[-1]
    chunks = [cv2.resize(np.ascontiguousarray(logits[..., i:i + 4], np.float32), (w, h),
                         interpolation=cv2.INTER_LINEAR).reshape(h, w, -1) for i in range(0, c, 4)]
    return np.concatenate(chunks, axis=-1).argmax(-1).astype(np.uint8)


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 RGB colours, well apart, the same for every run."""
    import cv2

    hues = (np.arange(n) * 0.618034) % 1.0
    hsv = np.stack([hues * 179, np.full(n, 200), np.full(n, 230)], -1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def background_class(classes: tuple[str, ...]) -> int | None:
    """The index of the class named "background" (any case), which overlays do not paint; None if there is none."""
    return next((i for i, name in enumerate(classes) if name.lower() == BACKGROUND), None)


def overlay(rgb: np.ndarray, mask: np.ndarray, colors: np.ndarray, alpha: float = 0.5,
            background: int | None = None) -> np.ndarray:
    """The image with each pixel tinted by its class colour; ignored pixels and the `background` class are left as
    they are, so the objects stand out and the scene stays visible."""
    color = colors[np.minimum(mask, len(colors) - 1)]
    out = (rgb * (1 - alpha) + color * alpha).astype(np.uint8)
    keep = (mask == IGNORE) | (mask == background if background is not None else False)
    out[keep] = rgb[keep]
    return out
