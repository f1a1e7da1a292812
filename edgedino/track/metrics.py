"""DAVIS region similarity J (IoU) and contour accuracy F (boundary F-measure), as the DAVIS toolkit defines them:
boundaries are the pixels where the mask changes towards the right, down or down-right neighbour; a boundary pixel
matches when the other mask's boundary lies within a disk of radius ceil(0.008 x image diagonal). Torch-free."""

from __future__ import annotations

import math

import numpy as np

BOUND_TH = 0.008  # tolerance as a fraction of the image diagonal (DAVIS)


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two boolean masks; 1 when both are empty (DAVIS)."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Boolean (H, W) boundary map: mask differs from its right, lower or lower-right neighbour."""
    m = mask.astype(bool)
    right, down, diag = np.zeros_like(m), np.zeros_like(m), np.zeros_like(m)
    right[:, :-1], down[:-1, :], diag[:-1, :-1] = m[:, 1:], m[1:, :], m[1:, 1:]
    b = (m ^ right) | (m ^ down) | (m ^ diag)
    b[-1, :] = m[-1, :] ^ right[-1, :]
    b[:, -1] = m[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """uint8 structuring element: the pixels with x² + y² <= radius²."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def tolerance(shape: tuple[int, int]) -> int:
    """Match radius in pixels for an image of this size."""
    return math.ceil(BOUND_TH * math.hypot(shape[0], shape[1]))


def f_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    """Boundary F-measure of two boolean masks (DAVIS conventions for empty boundaries)."""
    import cv2

    pb, gb = boundary(pred), boundary(gt)
    n_pred, n_gt = int(pb.sum()), int(gb.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    kernel = disk(tolerance(pred.shape))
    pred_near = cv2.dilate(pb.astype(np.uint8), kernel) > 0
    gt_near = cv2.dilate(gb.astype(np.uint8), kernel) > 0
    precision = float((pb & gt_near).sum() / n_pred)
    recall = float((gb & pred_near).sum() / n_gt)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def box_iou(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> float:
    """IoU of two (x, y, w, h) boxes; 1 when both are None (object absent), 0 when one is."""
    if a is None or b is None:
        return float(a is None and b is None)
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0
