"""The label-propagation protocols the tracker can follow, one row each: edgedino's (the default, faster, for live
use) and DINOv3's (its segmentation_tracking notebook op for op, the protocol of the paper's Table 14). Both share
the tracker's context (the first frame plus the last `context` frames), top-k and temperature. Torch-free."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgedino.track import notebook, propagate


@dataclass(frozen=True)
class Protocol:
    """The four steps where protocols differ."""

    neighbourhood: Callable[[tuple[int, int], int], np.ndarray | None]  # (grid, radius) -> penalty (N, N) or None
    first_labels: Callable[[np.ndarray, list[int], tuple[int, int]], np.ndarray]  # (mask, ids, grid) -> (h, w, L)
    propagate: Callable[..., np.ndarray]  # (query, keys, key_labels, penalty, topk, temperature) -> (N, L)
    to_frame: Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, np.ndarray]]  # -> (index, confidence)
    summary: str


PROTOCOLS = {
    "edgedino": Protocol(propagate.neighbourhood_penalty, propagate.mask_to_grid, propagate.propagate,
                         propagate.grid_to_frame,
                         "square neighbourhood, area-averaged first mask, exactly k keys, bilinear upsampling"),
    "dinov3": Protocol(notebook.circle_penalty, notebook.one_hot_labels, notebook.propagate_ties,
                       notebook.nearest_min_max,
                       "DINOv3's notebook: circular neighbourhood, one-hot first mask sampled nearest-exact, every "
                       "key tied with the k-th kept, nearest upsampling, per-object min-max before the argmax"),
}
