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


def summarize(labels: np.ndarray, confidence: np.ndarray, ids: list[int], first_area: dict[int, int],
              params: TrackParams) -> list[TrackedObject]:
    """One TrackedObject per id: lost when its mean confidence or its area (relative to the first frame) collapses."""
    objects = []
    for i in ids:
        binary = labels == i
        area = int(binary.sum())
        conf = float(confidence[binary].mean()) if area else 0.0
        lost = area < params.lost_area * first_area[i] or conf < params.lost_confidence
        objects.append(TrackedObject(id=i, box=mask_box(binary), area=area, confidence=conf, lost=bool(lost)))
    return objects
