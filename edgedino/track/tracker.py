"""Tracker: objects from a first-frame mask followed through a video by label propagation. Torch-free."""

from __future__ import annotations

import time

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime import Runtime
from edgedino.track.objects import summarize
from edgedino.track.params import TrackParams, TrackResult
from edgedino.track.protocol import PROTOCOLS


class Tracker:
    """Follow the objects of an id mask: `start(frame, mask)` once, then `step(frame)` per frame."""

    def __init__(self, runtime: Runtime, params: TrackParams | None = None, short_side: int | None = None):
        self.runtime = runtime
        self.params = params or TrackParams()
        self.short_side = short_side
        self.protocol = PROTOCOLS[self.params.protocol]
        self.ids: list[int] = []
        self._keys: np.ndarray | None = None  # (1 + context, N, D): slot 0 the first frame, then a ring
        self._labels: np.ndarray | None = None  # (1 + context, N, L) soft labels of those frames
        self._filled = 0
        self._next = 1

    def features(self, frame: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Unit-length patch features (h, w, D) of one RGB frame, and the runtime's per-stage ms."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise EdgeDinoError(f"a frame must be RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        feats = self.runtime.features(frame, self.short_side)
        return feats.normalized()[0].astype(np.float32, copy=False), dict(feats.ms)

    def start(self, frame: np.ndarray, mask: np.ndarray) -> TrackResult:
        """Begin tracking the objects of `mask` ((H, W) ids, 0 = background) in `frame`."""
        mask = np.asarray(mask)
        if mask.shape != frame.shape[:2]:
            raise EdgeDinoError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the frame is "
                                f"{frame.shape[1]}x{frame.shape[0]}: they must be the same size")
        ids = [int(i) for i in np.unique(mask) if i != 0]
        if not ids:
            raise EdgeDinoError("the initial mask is empty: mark at least one object (non-zero ids)")
        if max(ids) > 255 or min(ids) < 0:
            raise EdgeDinoError(f"object ids must be 1..255, got {min(ids)}..{max(ids)}")
        feats, ms = self.features(frame)
        t0 = time.perf_counter()
        grid = feats.shape[:2]
        self.ids, self._grid, self._frame_hw = ids, grid, frame.shape[:2]
        self._lut = np.zeros(256, np.uint8)  # label index -> object id
        self._lut[1:1 + len(ids)] = ids
        self._penalty = self.protocol.neighbourhood(grid, self.params.radius)
        n, slots = grid[0] * grid[1], 1 + self.params.context
        self._keys = np.zeros((slots, n, feats.shape[2]), np.float32)
        self._labels = np.zeros((slots, n, 1 + len(ids)), np.float32)
        self._keys[0] = feats.reshape(n, -1)
        self._labels[0] = self.protocol.first_labels(mask, ids, grid).reshape(n, -1)
        self._filled, self._next = 1, 1
        labels = np.where(np.isin(mask, ids), mask, 0).astype(np.uint8)
        self._first_area = {i: int((labels == i).sum()) for i in ids}
        objects = summarize(labels, np.ones(labels.shape, np.float32), ids, self._first_area, self.params)
        return TrackResult(labels, objects, {**ms, "propagate": (time.perf_counter() - t0) * 1e3})

    def step(self, frame: np.ndarray) -> TrackResult:
        """Propagate the labels to the next frame."""
        import cv2

        if self._keys is None:
            raise EdgeDinoError("call start(frame, mask) before step(frame)")
        if frame.shape[:2] != self._frame_hw:
            raise EdgeDinoError(f"frame size changed from {self._frame_hw[1]}x{self._frame_hw[0]} to "
                                f"{frame.shape[1]}x{frame.shape[0]}: call start() again")
        feats, ms = self.features(frame)
        t0 = time.perf_counter()
        n = self._keys.shape[1]
        query = feats.reshape(n, -1)
        probs = self.protocol.propagate(query, self._keys[:self._filled], self._labels[:self._filled], self._penalty,
                                        self.params.topk, self.params.temperature)
        self._remember(query, probs)
        index, confidence = self.protocol.to_frame(probs.reshape(*self._grid, -1), self._frame_hw)
        labels = cv2.LUT(index, self._lut)
        objects = summarize(labels, confidence, self.ids, self._first_area, self.params)
        return TrackResult(labels, objects, {**ms, "propagate": (time.perf_counter() - t0) * 1e3})

    def _remember(self, query: np.ndarray, probs: np.ndarray) -> None:
        """Keep this frame in the ring of the last `context` frames (slot 0 stays the first frame)."""
        if self.params.context == 0:
            return
        self._keys[self._next] = query
        self._labels[self._next] = probs
        self._filled = min(self._filled + 1, 1 + self.params.context)
        self._next = 1 + self._next % self.params.context

    def mask_from_boxes(self, frame: np.ndarray, boxes: dict[int, tuple[int, int, int, int]],
                        refine: bool = True) -> np.ndarray:
        """Boxes (x, y, w, h) per id -> an (H, W) id mask; refine keeps the box's pixels that look like its inside."""
        from edgedino.track.seed import boxes_to_mask

        feats = self.features(frame)[0] if refine else None
        return boxes_to_mask(frame.shape[:2], boxes, feats)

    def mask_from_points(self, frame: np.ndarray, points: dict[int, list[tuple[int, int]]]) -> np.ndarray:
        """Clicked (x, y) points per id -> an (H, W) id mask grown by feature similarity to the clicked patches."""
        from edgedino.track.seed import points_to_mask

        return points_to_mask(frame.shape[:2], points, self.features(frame)[0])
