"""DINOv3's tracking protocol, as its segmentation_tracking notebook does it (the protocol of the paper's Table 14),
in numpy: a circular neighbourhood, the first mask as one-hot labels sampled nearest-exact, every key tied with the
k-th similarity kept, and the propagated probabilities upsampled nearest and min-max normalised per object before
the argmax. Torch-free; edgedino's faster variants are in propagate.py. What stays the runtime's: frames are resized
with OpenCV (area when shrinking, bilinear when enlarging; sides rounded to the stride) where the notebook uses PIL's
antialiased bicubic with sides rounded up, and the features are the artifact's (fp32 for the paper's numbers)."""

from __future__ import annotations

import numpy as np

CHUNK = 1024  # query patches per block: bounds the (queries, frames x patches) similarity block at short side 960


def circle_penalty(grid_hw: tuple[int, int], radius: int) -> np.ndarray | None:
    """(N, N) float32: 0 where key patch j lies within Euclidean distance `radius` of query patch i, else -inf (so
    a key outside is never kept, even when fewer than k keys are inside); None when the circle covers the grid."""
    h, w = grid_hw
    if radius * radius >= (h - 1) ** 2 + (w - 1) ** 2:
        return None
    ys, xs = np.divmod(np.arange(h * w), w)
    dist2 = (ys[:, None] - ys[None, :]) ** 2 + (xs[:, None] - xs[None, :]) ** 2
    return np.where(dist2 <= radius * radius, 0.0, -np.inf).astype(np.float32)


def source_index(out_size: int, in_size: int, exact: bool) -> np.ndarray:
    """The input index each output index reads when resizing by nearest neighbour, as PyTorch computes it in float32:
    floor(i * in/out) ('nearest'), or floor((i + 0.5) * in/out) ('nearest-exact'), clipped to the input."""
    scale = np.float32(in_size / out_size)
    pos = np.arange(out_size, dtype=np.float64) + (0.5 if exact else 0.0)
    return np.minimum(np.floor((pos * scale).astype(np.float32)).astype(np.intp), in_size - 1)


def one_hot_labels(mask: np.ndarray, ids: list[int], grid_hw: tuple[int, int]) -> np.ndarray:
    """(h, w, 1 + len(ids)) float32 one-hot labels of the mask sampled nearest-exact at the patch grid."""
    (h, w), (height, width) = grid_hw, mask.shape[:2]
    sampled = mask[source_index(h, height, True)][:, source_index(w, width, True)]
    lut = np.zeros(256, np.intp)
    lut[ids] = np.arange(1, len(ids) + 1)
    return np.eye(1 + len(ids), dtype=np.float32)[lut[sampled]]


def propagate_ties(query: np.ndarray, keys: np.ndarray, key_labels: np.ndarray, penalty: np.ndarray | None,
                   topk: int, temperature: float) -> np.ndarray:
    """Soft labels (N, L) for N query patches: softmax(similarity / T) over every key at least as similar as the
    k-th most similar, then renormalised to sum to one. Arguments as propagate.propagate's."""
    frames, n, _ = keys.shape
    flat_keys, flat_labels = keys.reshape(frames * n, -1), key_labels.reshape(frames * n, -1)
    out = np.empty((n, flat_labels.shape[1]), np.float32)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        sim = (query[rows] @ flat_keys.T).reshape(-1, frames, n)
        if penalty is not None:
            sim += penalty[rows, None, :]
        sim = sim.reshape(sim.shape[0], frames * n)
        k = min(topk, sim.shape[1])
        kth = np.partition(sim, sim.shape[1] - k, axis=1)[:, sim.shape[1] - k, None]
        logits = sim / np.float32(temperature)
        weights = np.where(sim >= kth, np.exp(logits - logits.max(axis=1, keepdims=True)), np.float32(0))
        weights /= weights.sum(axis=1, keepdims=True)
        probs = weights @ flat_labels
        out[rows] = probs / probs.sum(axis=1, keepdims=True)
    return out


def nearest_min_max(probs: np.ndarray, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Soft labels (h, w, L) upsampled nearest to the frame, each label's plane min-max normalised over the frame
    (a constant plane becomes 0): (label index (H, W) uint8 by argmax, its normalised probability (H, W))."""
    (h, w), (height, width) = probs.shape[:2], frame_hw
    ys, xs = source_index(height, h, False), source_index(width, w, False)
    seen = probs[np.unique(ys)][:, np.unique(xs)]  # the grid cells the frame shows: min and max are theirs
    low, high = seen.min(axis=(0, 1)), seen.max(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.nan_to_num((probs - low) / (high - low), nan=0.0)
    index = scaled.argmax(axis=-1).astype(np.uint8)
    best = np.take_along_axis(scaled, index[..., None].astype(np.intp), axis=-1)[..., 0]
    return index[ys][:, xs], best[ys][:, xs].astype(np.float32)
