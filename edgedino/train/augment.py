"""DINOv3 multi-crop: 2 global and N local views of one image, each with its own random augmentations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD
from edgedino.train.photometric import colour_jitter, gaussian_blur, grayscale, solarize


@dataclass
class MultiCropConfig:
    """Crop sizes/scales and augmentation probabilities; blur_p is (global 1, global 2, locals) as DINOv3."""

    global_size: int = 224
    global_scale: tuple[float, float] = (0.32, 1.0)
    local_size: int = 96
    local_scale: tuple[float, float] = (0.05, 0.32)
    n_local: int = 8
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: tuple[float, float, float] = (1.0, 0.1, 0.5)
    solarize_p: float = 0.2
    flip_p: float = 0.5
    global_hr_size: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def crop_box(hw: tuple[int, int], scale: tuple[float, float], rng: np.random.Generator,
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random-resized-crop box: area fraction in `scale`, aspect in `ratio`."""
    h, w = hw
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    aspect = min(max(w / h, ratio[0]), ratio[1])
    cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
    cw, ch = min(cw, w), min(ch, h)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Square resize: area averaging when shrinking, bicubic when enlarging."""
    import cv2

    shrink = img.shape[0] > size and img.shape[1] > size
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


class MultiCrop:
    """rgb uint8 (H, W, 3) + rng -> {"global": (2,3,G,G), "local": (n,3,L,L)[, "global_hr": (2,3,2G,2G)]}."""

    def __init__(self, cfg: MultiCropConfig | None = None):
        self.cfg = cfg or MultiCropConfig()
        self.mean = np.asarray(self.cfg.mean, np.float32)
        self.std = np.asarray(self.cfg.std, np.float32)

    def _view(self, rgb: np.ndarray, size: int, scale: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
        """Random resized crop, flip, colour jitter and grayscale: float32 in [0, 1]."""
        top, left, ch, cw = crop_box(rgb.shape[:2], scale, rng)
        x = resize(rgb[top:top + ch, left:left + cw], size).astype(np.float32) / 255.0
        if rng.random() < self.cfg.flip_p:
            x = x[:, ::-1]
        if rng.random() < self.cfg.jitter_p:
            x = colour_jitter(np.ascontiguousarray(x), self.cfg.jitter, rng)
        if rng.random() < self.cfg.grayscale_p:
            x = grayscale(x)
        return np.ascontiguousarray(x)

    def _tensor(self, views: list[np.ndarray], size: int) -> torch.Tensor:
        """Normalised (n, 3, S, S) float32 tensor."""
        if not views:
            return torch.zeros(0, 3, size, size)
        x = (np.stack(views) - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """All crops of one image; the same rng state gives the same crops."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"MultiCrop expects an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        cfg = self.cfg
        globals_, high = [], []
        for i in range(2):
            x = self._view(rgb, cfg.global_hr_size or cfg.global_size, cfg.global_scale, rng)
            if rng.random() < cfg.blur_p[i]:
                x = gaussian_blur(x, rng)
            if i == 1 and rng.random() < cfg.solarize_p:
                x = solarize(x)
            if cfg.global_hr_size:
                high.append(x)
                x = resize(x, cfg.global_size)
            globals_.append(x)
        locals_ = []
        for _ in range(cfg.n_local):
            x = self._view(rgb, cfg.local_size, cfg.local_scale, rng)
            locals_.append(gaussian_blur(x, rng) if rng.random() < cfg.blur_p[2] else x)
        out = {"global": self._tensor(globals_, cfg.global_size), "local": self._tensor(locals_, cfg.local_size)}
        if high:
            out["global_hr"] = self._tensor(high, cfg.global_hr_size)
        return out
