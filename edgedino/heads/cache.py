"""What a head reads from the frozen backbone, computed once per image set and kept on disk.

The cache key covers the backbone's weights (a digest of its state), the input size, the task and every
image file (path, size, modification time), so a changed file or backbone is never served stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgedino.atomic import atomic_path
from edgedino.heads.head import Head
from edgedino.models import Backbone
from edgedino.runtime.frames import model_inputs
from edgedino.runtime.preprocess import read_image

BATCH = 16


def backbone_digest(backbone: Backbone) -> str:
    """SHA-256 over the backbone's parameters and buffers: the same weights give the same digest."""
    digest = hashlib.sha256(backbone.cfg.name.encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _key(digest: str, task: str, imgsz: tuple[int, int], images: list[Path]) -> str:
    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in images]
    blob = json.dumps({"backbone": digest, "task": task, "imgsz": list(imgsz), "files": files})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@torch.no_grad()
def compute(backbone: Backbone, task: str, images: list[Path], imgsz: tuple[int, int],
            log: Callable[[str], None] = print) -> np.ndarray:
    """Head inputs for every image: classify (N, 2D), segment (N, h, w, D), preprocessed as the runtime does."""
    parts = []
    for start in range(0, len(images), BATCH):
        frames = [read_image(p) for p in images[start:start + BATCH]]
        out = backbone.forward_features(torch.from_numpy(model_inputs(frames, imgsz)))
        parts.append(Head.inputs(task, out["cls"], out["patch_tokens"]).float().numpy())
        done = min(start + BATCH, len(images))
        if done == len(images) or (start // BATCH) % 8 == 7:
            log(f"    features: {done}/{len(images)} images")
    return np.concatenate(parts)


def head_inputs(backbone: Backbone, digest: str, task: str, images: list[Path], imgsz: tuple[int, int],
                cache_dir: Path | None, log: Callable[[str], None] = print) -> np.ndarray:
    """`compute`, read from `cache_dir` when it holds this exact image set and backbone (written there otherwise)."""
    if cache_dir is None:
        return compute(backbone, task, images, imgsz, log)
    path = Path(cache_dir) / f"{task}_{_key(digest, task, imgsz, images)}.npy"
    if path.exists():
        log(f"    features: {len(images)} images from the cache {path}")
        return np.load(path)
    feats = compute(backbone, task, images, imgsz, log)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, feats)
    return feats
