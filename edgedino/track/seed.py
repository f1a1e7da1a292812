"""First masks from what a user gives: boxes (optionally refined by features) or clicked points. Torch-free."""

from __future__ import annotations

import numpy as np

from edgedino.errors import EdgeDinoError

MIN_KEPT = 0.15  # a refinement that keeps less than this fraction of a box falls back to the whole box


def _check_id(i: int) -> int:
    if not 1 <= int(i) <= 255:
        raise EdgeDinoError(f"object ids must be 1..255, got {i}")
    return int(i)


def _clip_box(box, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inside the frame; an error for a box that is empty or outside it."""
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, frame_hw[1]), min(y + h, frame_hw[0])
    if x1 <= x0 or y1 <= y0:
        raise EdgeDinoError(f"box {tuple(box)} is empty or outside the {frame_hw[1]}x{frame_hw[0]} frame")
    return x0, y0, x1, y1


def _centres(grid_hw: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates (y, x) of every patch centre, each (h, w)."""
    (h, w), (fh, fw) = grid_hw, frame_hw
    ys = (np.arange(h) + 0.5) * fh / h
    xs = (np.arange(w) + 0.5) * fw / w
    return np.meshgrid(ys, xs, indexing="ij")


def _upsample(grid_map: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(grid_map.astype(np.float32), (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_LINEAR)


def _nearest(sim: np.ndarray) -> np.ndarray:
    """Each row's highest similarity: nearest-neighbour matching beats prototypes (means) for textured objects."""
    return sim.max(axis=1)


def _refine(feats: np.ndarray, frame_hw, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """Score map (H, W) > 0 where a pixel looks more like the box's core than its surroundings; None if unknowable."""
    x0, y0, x1, y1 = box
    cy, cx = _centres(feats.shape[:2], frame_hw)
    inside = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
    mx, my = (x1 - x0) / 4, (y1 - y0) / 4
    core = (cx >= x0 + mx) & (cx < x1 - mx) & (cy >= y0 + my) & (cy < y1 - my)
    px, py = max(2 * mx, frame_hw[1] / feats.shape[1]), max(2 * my, frame_hw[0] / feats.shape[0])
    ring = (cx >= x0 - px) & (cx < x1 + px) & (cy >= y0 - py) & (cy < y1 + py) & ~inside
    if not core.any() or not ring.any():
        return None
    flat = feats.reshape(-1, feats.shape[-1])
    score = _nearest(flat @ flat[core.ravel()].T) - _nearest(flat @ flat[ring.ravel()].T)
    return _upsample(score.reshape(feats.shape[:2]), frame_hw)


def boxes_to_mask(frame_hw: tuple[int, int], boxes: dict[int, tuple], feats: np.ndarray | None) -> np.ndarray:
    """(H, W) uint8 id mask from (x, y, w, h) boxes; with features, each box keeps the pixels that look like its
    inside rather than its surroundings (the whole box when that keeps too little). Smaller boxes lie on top."""
    if not boxes:
        raise EdgeDinoError("no boxes given: give at least one (x, y, w, h) box")
    mask = np.zeros(frame_hw, np.uint8)
    clipped = {_check_id(i): _clip_box(b, frame_hw) for i, b in boxes.items()}
    for i, (x0, y0, x1, y1) in sorted(clipped.items(), key=lambda kv: -(kv[1][2] - kv[1][0]) * (kv[1][3] - kv[1][1])):
        keep = np.ones((y1 - y0, x1 - x0), bool)
        score = None if feats is None else _refine(feats, frame_hw, (x0, y0, x1, y1))
        if score is not None:
            refined = score[y0:y1, x0:x1] > 0
            keep = refined if refined.mean() >= MIN_KEPT else keep
        mask[y0:y1, x0:x1][keep] = i
    return mask


def points_to_mask(frame_hw: tuple[int, int], points: dict[int, list[tuple[int, int]]],
                   feats: np.ndarray) -> np.ndarray:
    """(H, W) uint8 id mask: per id, the patches more similar to its clicked patches than Otsu's threshold on that
    similarity, connected to a click; overlaps go to the most similar id."""
    import cv2

    if not points or not all(points.values()):
        raise EdgeDinoError("no points given: give at least one (x, y) point per object")
    (h, w), (fh, fw) = feats.shape[:2], frame_hw
    flat = feats.reshape(-1, feats.shape[-1])
    scores = [np.zeros((h, w), np.float32)]
    ids = []
    for i, pts in points.items():
        cells = []
        for x, y in pts:
            if not (0 <= x < fw and 0 <= y < fh):
                raise EdgeDinoError(f"point ({x}, {y}) of object {i} is outside the {fw}x{fh} frame")
            cells.append((min(int(y * h / fh), h - 1), min(int(x * w / fw), w - 1)))
        sim = (flat @ flat[[r * w + c for r, c in cells]].T).max(axis=1).reshape(h, w)
        level = np.clip((sim + 1) * 127.5, 0, 255).astype(np.uint8)
        t, fg = cv2.threshold(level, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        _, comp = cv2.connectedComponents(fg.astype(np.uint8), connectivity=4)
        keep = np.isin(comp, [comp[r, c] for r, c in cells if comp[r, c] > 0])
        for r, c in cells:
            keep[r, c] = True
        scores.append(np.where(keep, np.maximum(sim - (t / 127.5 - 1), 1e-3), -1.0).astype(np.float32))
        ids.append(_check_id(i))
    index = np.stack([_upsample(s, frame_hw) for s in scores], axis=-1).argmax(axis=-1)
    return np.asarray([0, *ids], np.uint8)[index]
