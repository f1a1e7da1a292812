"""Per-object summaries from an id mask: box, area, confidence and the "lost" state. Torch-free."""

from __future__ import annotations

import numpy as np

from edgedino.track.params import TrackedObject, TrackParams


def mask_box(binary: np.ndarray) -> tuple[int, int, int, int] | None:
    """The (x, y, w, h) bounding box of a boolean mask, or None when it is empty."""
    import cv2

    if not binary.any():
        return None
    x, y, w, h = cv2.boundingRect(binary.astype(np.uint8))
    return int(x), int(y), int(w), int(h)


SPECK = 0.1  # parts smaller than this fraction of an object's largest part are left out of its box


def object_box(binary: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box of a tracked mask's main parts: stray specks (parts under SPECK of the largest) do not stretch it."""
    import cv2

    if not binary.any():
        return None
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    parts = stats[1:count]
    main = parts[parts[:, cv2.CC_STAT_AREA] >= SPECK * parts[:, cv2.CC_STAT_AREA].max()]
    x0, y0 = main[:, cv2.CC_STAT_LEFT].min(), main[:, cv2.CC_STAT_TOP].min()
    x1 = (main[:, cv2.CC_STAT_LEFT] + main[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (main[:, cv2.CC_STAT_TOP] + main[:, cv2.CC_STAT_HEIGHT]).max()
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def summarize(labels: np.ndarray, confidence: np.ndarray, ids: list[int], first_area: dict[int, int],
              params: TrackParams) -> list[TrackedObject]:
    """One TrackedObject per id: lost when its mean confidence or its area (relative to the first frame) collapses."""
    objects = []
    for i in ids:
        binary = labels == i
        area = int(binary.sum())
        conf = float(confidence[binary].mean()) if area else 0.0
        lost = area < params.lost_area * first_area[i] or conf < params.lost_confidence
        objects.append(TrackedObject(id=i, box=object_box(binary), area=area, confidence=conf, lost=bool(lost)))
    return objects
