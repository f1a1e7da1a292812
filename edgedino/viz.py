"""Pictures of features: the classic DINO PCA view. Torch-free (numpy + OpenCV)."""

from __future__ import annotations

import numpy as np


def pca_rgb(patch_tokens: np.ndarray, components: int = 3) -> np.ndarray:
    """(h, w, D) features -> (h, w, 3) uint8: the first three principal components as RGB.

    Each component is scaled by its 1st-99th percentile range, so a few outlier patches do not wash
    out the picture.
    """
    h, w, d = patch_tokens.shape
    x = patch_tokens.reshape(-1, d).astype(np.float64)
    x -= x.mean(axis=0)
    proj = _top_components(x, components)
    lo, hi = np.percentile(proj, [1, 99], axis=0)
    proj = np.clip((proj - lo) / np.maximum(hi - lo, 1e-8), 0, 1)
    return (proj.reshape(h, w, components) * 255).astype(np.uint8)


def _top_components(x: np.ndarray, k: int) -> np.ndarray:
    """x projected on its top-k principal axes, from the eigenvectors of the smaller Gram matrix (x xᵀ or xᵀ x):
    the same projection as an SVD, several times faster for a live view."""
    if x.shape[0] <= x.shape[1]:
        values, vectors = np.linalg.eigh(x @ x.T)
        return vectors[:, ::-1][:, :k] * np.sqrt(np.maximum(values[::-1][:k], 0))
    _, vectors = np.linalg.eigh(x.T @ x)
    return x @ vectors[:, ::-1][:, :k]


def side_by_side(rgb: np.ndarray, features_rgb: np.ndarray) -> np.ndarray:
    """The image and a feature picture (nearest-upsampled to the image's height) next to each other."""
    import cv2

    h, w = rgb.shape[:2]
    fh, fw = features_rgb.shape[:2]
    up = cv2.resize(features_rgb, (round(fw * h / fh), h), interpolation=cv2.INTER_NEAREST)
    gap = np.full((h, 8, 3), 255, np.uint8)
    return np.concatenate([rgb, gap, up], axis=1)
