"""Pixel-level augmentations of DINO on float32 RGB images in [0, 1] (H, W, 3): numpy and OpenCV, no torchvision."""

from __future__ import annotations

import numpy as np

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grayscale(x: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601) copied into the three channels."""
    return np.repeat((x @ GRAY_WEIGHTS)[..., None], 3, axis=2)


def _blend(x: np.ndarray, other: np.ndarray | float, factor: float) -> np.ndarray:
    """factor * x + (1 - factor) * other, clipped to [0, 1]."""
    return np.clip(factor * x + (1.0 - factor) * other, 0.0, 1.0)


def _shift_hue(x: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by `shift` turns (in [-0.5, 0.5])."""
    import cv2

    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift * 360.0, 360.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


def colour_jitter(x: np.ndarray, strength: tuple[float, float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue changes (strengths as torchvision's ColorJitter), in random order."""
    brightness, contrast, saturation, hue = strength
    for op in rng.permutation(4):
        if op == 0 and brightness > 0:
            x = np.clip(x * rng.uniform(max(0.0, 1 - brightness), 1 + brightness), 0.0, 1.0)
        elif op == 1 and contrast > 0:
            x = _blend(x, float((x @ GRAY_WEIGHTS).mean()), rng.uniform(max(0.0, 1 - contrast), 1 + contrast))
        elif op == 2 and saturation > 0:
            x = _blend(x, grayscale(x), rng.uniform(max(0.0, 1 - saturation), 1 + saturation))
        elif op == 3 and hue > 0:
            x = _shift_hue(x, rng.uniform(-hue, hue))
    return x.astype(np.float32, copy=False)


def gaussian_blur(x: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel: int = 9) -> np.ndarray:
    """Gaussian blur with a 9x9 kernel and sigma drawn from [0.1, 2.0] (DINO's setting)."""
    import cv2

    s = rng.uniform(*sigma)
    return cv2.GaussianBlur(x, (kernel, kernel), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT_101)


def solarize(x: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Invert the pixels at or above the threshold (128 of 255)."""
    return np.where(x >= threshold, 1.0 - x, x).astype(np.float32)
