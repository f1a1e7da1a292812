"""Decoding of data items (image files, video frames) into transformed samples; unreadable items become `Skipped`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from edgedino.data.sources import Item
from edgedino.data.video import VideoFrames

JPEG_SUFFIXES = (".jpg", ".jpeg")


class Draw(NamedTuple):
    """What the sampler asks for: item `index`, drawn at stream `position` in global batch `batch`; (seed, position)
    seeds its crops."""

    index: int
    position: int
    seed: int
    batch: int = 0


@dataclass(frozen=True)
class Skipped:
    """An item that could not be decoded, why, and where in the stream it was drawn."""

    path: str
    reason: str
    position: int = -1


def decode_image(path: str) -> np.ndarray | str:
    """RGB uint8 (H, W, 3), or why not: unreadable, not an image, or a JPEG cut short (OpenCV would pad it grey)."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if path.lower().endswith(JPEG_SUFFIXES) and b"\xff\xd9" not in data[-4096:].tobytes():
        return "truncated JPEG (no end-of-image marker)"
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        return "not an image OpenCV decodes (corrupt or wrong format)"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageDataset(Dataset):
    """items[i] -> transform(rgb, rng) with a per-draw rng; a `Skipped` for an item that cannot be decoded."""

    def __init__(self, items: list[Item], transform: Callable[[np.ndarray, np.random.Generator], object]):
        self.items, self.transform = items, transform
        wanted: dict[str, list[int]] = {}
        for path, frame in items:
            if frame >= 0:
                wanted.setdefault(path, []).append(frame)
        self.videos = VideoFrames(wanted)  # filled lazily, so each worker process fills its own

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> np.ndarray | str:
        """The RGB image of item `index`, or why it cannot be read."""
        path, frame = self.items[index]
        return decode_image(path) if frame < 0 else self.videos.read(path, frame)

    def __getitem__(self, draw: Draw | int) -> dict | Skipped:
        """{"position", transform outputs...} for a Draw (or a plain index: position = index, seed 0)."""
        draw = draw if isinstance(draw, Draw) else Draw(int(draw), int(draw), 0)
        rgb = self.read(draw.index)
        if isinstance(rgb, str):
            path, frame = self.items[draw.index]
            return Skipped(path if frame < 0 else f"{path}#frame{frame}", rgb, draw.position)
        # a transform with `at_batch` may vary per global batch (mixed resolutions): the same for a whole batch
        transform = self.transform.at_batch(draw.seed, draw.batch) if hasattr(self.transform, "at_batch") \
            else self.transform
        out = transform(rgb, np.random.default_rng([draw.seed, draw.position, 2]))
        out = dict(out) if isinstance(out, dict) else {"image": out}
        return {**out, "position": torch.tensor(draw.position)}


def collate_skip(samples: list[dict | Skipped | None]) -> dict:
    """Stack the readable samples key by key; the unreadable ones go to batch["skipped"] (a list of Skipped)."""
    kept = [s for s in samples if isinstance(s, dict)]
    batch: dict = {"skipped": [s for s in samples if isinstance(s, Skipped)]}
    batch["skipped"] += [Skipped("?", "dataset returned None")] * sum(s is None for s in samples)
    for key in kept[0] if kept else ():
        batch[key] = torch.stack([s[key] for s in kept])
    return batch
