"""Overlays for the demo apps: mask tint, box, "id N 0.87" / "LOST", FPS and per-stage milliseconds. Torch-free."""

from __future__ import annotations

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.track.palette import davis_palette
from edgedino.track.params import TrackResult

ALPHA = 0.45  # tint strength over the object's pixels
LOST_BGR = (0, 0, 255)


def id_colour(i: int) -> tuple[int, int, int]:
    """The DAVIS colour of an object id, as a BGR tuple for OpenCV."""
    r, g, b = (int(v) for v in davis_palette()[i % 256])
    return b, g, r


def _text(bgr: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Text with a dark outline, readable on any background."""
    import cv2

    cv2.putText(bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


def tint(bgr: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The frame with each object's pixels blended towards its colour (OpenCV ops: a few ms at 640x480)."""
    import cv2

    bgr_palette = davis_palette()[:, ::-1]
    overlay = cv2.merge([cv2.LUT(labels, np.ascontiguousarray(bgr_palette[:, c])) for c in range(3)])
    blend = cv2.addWeighted(bgr, 1 - ALPHA, overlay, ALPHA, 0)
    out = bgr.copy()
    cv2.copyTo(blend, (labels > 0).view(np.uint8), out)
    return out


def draw_tracks(bgr: np.ndarray, result: TrackResult, fps: float | None = None,
                ms: dict[str, float] | None = None) -> np.ndarray:
    """A copy of a BGR frame with the tracker's masks, boxes, labels and timings drawn on it."""
    import cv2

    if result.labels.shape != bgr.shape[:2]:
        raise EdgeDinoError(f"labels {result.labels.shape} do not match the frame {bgr.shape[:2]}")
    out = tint(bgr, result.labels)
    for obj in result.objects:
        colour = LOST_BGR if obj.lost else id_colour(obj.id)
        if obj.box is not None:
            x, y, w, h = obj.box
            cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, 2)
            anchor = (x, max(y - 6, 14))
        else:
            anchor = (8, out.shape[0] - 10 - 18 * obj.id % out.shape[0])
        label = f"id {obj.id} {obj.confidence:.2f}" + (" LOST" if obj.lost else "")
        _text(out, label, anchor, colour)
    lines = []
    if fps is not None:
        lines.append(f"{fps:.1f} FPS")
    if ms:
        lines.append(" ".join(f"{k} {v:.1f}ms" for k, v in ms.items()))
    for row, line in enumerate(lines):
        _text(out, line, (8, 20 + 20 * row), (255, 255, 255))
    return out
