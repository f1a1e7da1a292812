"""DINOv3 multi-crop: 2 global and N local views of one image, each with its own random augmentations."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD
from edgedino.train.photometric import colour_jitter, gaussian_blur, grayscale, solarize


@dataclass
class MultiCropConfig:
    """Crop sizes/scales and augmentation probabilities; blur_p is (global 1, global 2, locals)."""

    global_size: int = 224
    global_scale: tuple[float, float] = (0.32, 1.0)
    local_size: int = 96
    local_scale: tuple[float, float] = (0.05, 0.32)
    n_local: int = 8
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    # What trained the released models: the official GaussianBlur(p) hands 1 - p to RandomApply, so its written
    # 1.0 / 0.1 / 0.5 blur with probability 0.0 / 0.9 / 0.5 (facebookresearch/dinov3#286).
    blur_p: tuple[float, float, float] = (0.0, 0.9, 0.5)
    solarize_p: float = 0.2
    flip_p: float = 0.5
    hr_scale: float = 0.0  # also the two global views at this times the side ("global_hr"; 0: none)
    hr_undistorted: bool = False  # the hr views skip colour jitter, grayscale, blur and solarisation
    resolutions: tuple = ()  # ((global, local, weight), ...): one drawn per batch (high-res adaptation)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def hr_size(self) -> int:
        return round(self.global_size * self.hr_scale) if self.hr_scale else 0


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

    if img.shape[0] == img.shape[1] == size:
        return img
    shrink = img.shape[0] > size and img.shape[1] > size
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def pick_resolution(resolutions: tuple, seed: int, batch: int) -> int:
    """Which of the (global, local, weight) rows batch `batch` uses: drawn from (seed, batch) by weight, so every
    process (and a resumed run) picks the same one for the same step."""
    weights = np.array([r[2] for r in resolutions], dtype=np.float64)
    return int(np.random.default_rng([seed, batch, 3]).choice(len(resolutions), p=weights / weights.sum()))


class MultiCrop:
    """rgb uint8 (H, W, 3) + rng -> {"global": (2,3,G,G), "local": (n,3,L,L)[, "global_hr": (2,3,sG,sG)]}."""

    def __init__(self, cfg: MultiCropConfig | None = None):
        self.cfg = cfg or MultiCropConfig()
        self.mean = np.asarray(self.cfg.mean, np.float32)
        self.std = np.asarray(self.cfg.std, np.float32)

    def at_batch(self, seed: int, batch: int) -> MultiCrop:
        """The crops of global batch `batch`: this transform, or with `resolutions` the row drawn for the batch."""
        if not self.cfg.resolutions:
            return self
        g, loc, _ = self.cfg.resolutions[pick_resolution(self.cfg.resolutions, seed, batch)]
        return MultiCrop(replace(self.cfg, global_size=int(g), local_size=int(loc), resolutions=()))

    def _geometry(self, rgb: np.ndarray, size: int, scale: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
        """Random resized crop and flip: float32 in [0, 1]."""
        top, left, ch, cw = crop_box(rgb.shape[:2], scale, rng)
        x = resize(rgb[top:top + ch, left:left + cw], size).astype(np.float32) / 255.0
        return x[:, ::-1] if rng.random() < self.cfg.flip_p else x

    def _colour(self, x: np.ndarray, blur_p: float, rng: np.random.Generator, solarize_p: float = 0.0) -> np.ndarray:
        """Colour jitter, grayscale, blur (and solarisation), in the official order."""
        x = np.ascontiguousarray(x)
        if rng.random() < self.cfg.jitter_p:
            x = colour_jitter(x, self.cfg.jitter, rng)
        if rng.random() < self.cfg.grayscale_p:
            x = grayscale(x)
        if rng.random() < blur_p:
            x = gaussian_blur(np.ascontiguousarray(x), rng)
        if solarize_p and rng.random() < solarize_p:
            x = solarize(x)
        return np.ascontiguousarray(x)

    def _global(self, rgb: np.ndarray, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """Global view i (and its hr twin): one crop at the larger side, the student's view resized from it."""
        cfg = self.cfg
        hr = cfg.hr_size
        base = self._geometry(rgb, max(hr, cfg.global_size), cfg.global_scale, rng)
        solar = cfg.solarize_p if i == 1 else 0.0
        if hr and cfg.hr_undistorted:
            return self._colour(resize(base, cfg.global_size), cfg.blur_p[i], rng, solar), base
        x = self._colour(base, cfg.blur_p[i], rng, solar)
        return (resize(x, cfg.global_size), x) if hr else (x, None)

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
        views = [self._global(rgb, i, rng) for i in range(2)]
        locals_ = [self._colour(self._geometry(rgb, cfg.local_size, cfg.local_scale, rng), cfg.blur_p[2], rng)
                   for _ in range(cfg.n_local)]
        out = {"global": self._tensor([v[0] for v in views], cfg.global_size),
               "local": self._tensor(locals_, cfg.local_size)}
        if cfg.hr_size:
            out["global_hr"] = self._tensor([v[1] for v in views], cfg.hr_size)
        return out
