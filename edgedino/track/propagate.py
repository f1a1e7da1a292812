"""Label propagation over patch features: each new patch takes a softmax-weighted vote of the labels of its
top-k most similar patches among the context frames, within a square neighbourhood. Vectorised numpy."""

from __future__ import annotations

import numpy as np

OUTSIDE = -4.0  # added to cosine similarities (in [-1, 1]) outside the neighbourhood: never among the top-k


def neighbourhood_penalty(grid_hw: tuple[int, int], radius: int) -> np.ndarray | None:
    """(N, N) float32: 0 where key patch j lies within `radius` patches (Chebyshev) of query patch i, else OUTSIDE;
    None when the window covers the whole grid (nothing to restrict, one pass saved per frame)."""
    h, w = grid_hw
    if radius >= max(h, w) - 1:
        return None
    ys, xs = np.divmod(np.arange(h * w), w)
    near = (np.abs(ys[:, None] - ys[None, :]) <= radius) & (np.abs(xs[:, None] - xs[None, :]) <= radius)
    return np.where(near, 0.0, OUTSIDE).astype(np.float32)


def top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values), each (N, k): every row's k largest entries, by k passes of argmax (for the small k of
    label propagation, several times faster than argpartition over thousands of keys). Consumes `sim`: its
    picked entries become -inf."""
    rows = np.arange(sim.shape[0])
    idx = np.empty((sim.shape[0], k), np.intp)
    values = np.empty((sim.shape[0], k), sim.dtype)
    for j in range(k):
        idx[:, j] = sim.argmax(axis=1)
        values[:, j] = sim[rows, idx[:, j]]
        sim[rows, idx[:, j]] = -np.inf
    return idx, values


def propagate(query: np.ndarray, keys: np.ndarray, key_labels: np.ndarray, penalty: np.ndarray | None,
              topk: int, temperature: float) -> np.ndarray:
    """Soft labels (N, L) for N query patches.

    query: (N, D) unit-length features of the new frame; keys: (F, N, D) unit-length features of F context
    frames; key_labels: (F, N, L) their soft labels; penalty: (N, N) from neighbourhood_penalty, or None.
    """
    frames, n, _ = keys.shape
    sim = (query @ keys.reshape(frames * n, -1).T).reshape(n, frames, n)
    if penalty is not None:
        sim += penalty[:, None, :]
    sim = sim.reshape(n, frames * n)
    idx, top = top_k(sim, min(topk, sim.shape[1]))
    weights = np.exp((top - top.max(axis=1, keepdims=True)) / temperature)
    weights /= weights.sum(axis=1, keepdims=True)
    votes = key_labels.reshape(frames * n, -1)[idx]  # (N, k, L)
    return np.einsum("nk,nkl->nl", weights, votes)


def mask_to_grid(mask: np.ndarray, ids: list[int], grid_hw: tuple[int, int]) -> np.ndarray:
    """(h, w, 1 + len(ids)) float32 soft labels: the fraction of each patch covered by background and each id."""
    import cv2

    h, w = grid_hw
    planes = [cv2.resize((mask == i).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) for i in [0, *ids]]
    soft = np.stack(planes, axis=-1)
    return soft / np.maximum(soft.sum(axis=-1, keepdims=True), 1e-6)


def grid_to_frame(probs: np.ndarray, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Soft labels (h, w, L) upsampled bilinearly to the frame: (label index (H, W) uint8, its probability (H, W)).
    One plane at a time: a running max over L contiguous planes is far faster than argmax over a short last axis."""
    import cv2

    height, width = frame_hw
    planes = np.ascontiguousarray(np.moveaxis(probs, -1, 0), dtype=np.float32)
    best = cv2.resize(planes[0], (width, height), interpolation=cv2.INTER_LINEAR)
    index = np.zeros((height, width), np.uint8)
    for label in range(1, len(planes)):
        plane = cv2.resize(planes[label], (width, height), interpolation=cv2.INTER_LINEAR)
        higher = plane > best
        index[higher] = label
        np.maximum(best, plane, out=best)
    return index, best
