"""Training a head on cached backbone features: AdamW with a cosine schedule, cross-entropy.

Segmentation trains per patch on soft targets: each patch's share of every class in its pixels (unlabelled
pixels left out), so the patch grid learns from masks at any resolution without resizing labels to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgedino.heads.data import read_mask
from edgedino.heads.head import Head


@dataclass
class TrainConfig:
    steps: int = 1500
    batch: int = 256  # rows per step: images (classify) or patches (segment)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def patch_targets(masks: list[Path], grid: tuple[int, int], num_classes: int) -> np.ndarray:
    """(N, h, w, C) float32: each patch's fraction of labelled pixels per class (all zero: no labelled pixel)."""
    import cv2

    gh, gw = grid
    out = np.zeros((len(masks), gh, gw, num_classes), np.float32)
    for i, path in enumerate(masks):
        mask = read_mask(path, num_classes)
        for c in range(num_classes):
            out[i, ..., c] = cv2.resize((mask == c).astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    total = out.sum(-1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 1e-3)


def _rows(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Training rows: one per image (classify), or one per labelled patch (segment)."""
    if y.ndim == 1:
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    keep = y.sum(-1) > 0.5
    return torch.from_numpy(x[keep]), torch.from_numpy(y[keep])


def train_head(head: Head, x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
               log: Callable[[str], None] = print) -> float:
    """Fit `head` to inputs x and targets y (class indices, or soft patch targets); the final loss."""
    rows, targets = _rows(x, y)
    if len(rows) == 0:
        raise ValueError("no labelled training rows")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steps this small only lose to thread hand-offs (66 vs 3 ms a step on 2 busy cores)
    try:
        return _fit(head, rows, targets, cfg, log)
    finally:
        torch.set_num_threads(threads)


def _fit(head: Head, rows: torch.Tensor, targets: torch.Tensor, cfg: TrainConfig, log) -> float:
    torch.manual_seed(cfg.seed)
    head.set_standardisation(rows)
    head.train()
    opt = torch.optim.AdamW(head.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = min(cfg.batch, len(rows))
    running = 0.0
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        idx = torch.randint(0, len(rows), (batch,), generator=gen)
        loss = F.cross_entropy(head.logits(rows[idx]), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running = loss.item() if step == 0 else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % max(1, cfg.steps // 4) == 0:
            log(f"    step {step + 1}/{cfg.steps}: loss {running:.4f}")
    head.eval()
    return running
