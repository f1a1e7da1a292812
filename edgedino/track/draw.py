"""Overlays for the tracking app: mask tint, box, "id N 0.87" / "LOST" labels, FPS and per-stage milliseconds, the
text on dark boxes that stay inside the frame (edgedino.caption). Torch-free."""

from __future__ import annotations

import numpy as np

from edgedino.caption import Label, TextStyle, draw_labels, noted, place, stack, stats_lines
from edgedino.errors import EdgeDinoError
from edgedino.track.palette import davis_palette
from edgedino.track.params import TrackResult

ALPHA = 0.45  # tint strength over the object's pixels
LOST_BGR = (0, 0, 255)


def id_colour(i: int) -> tuple[int, int, int]:
    """The DAVIS colour of an object id, as a BGR tuple for OpenCV."""
    r, g, b = (int(v) for v in davis_palette()[i % 256])
    return b, g, r


def tint(bgr: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The frame with each object's pixels blended towards its colour (OpenCV ops: a few ms at 640x480)."""
    import cv2

    bgr_palette = davis_palette()[:, ::-1]
    overlay = cv2.merge([cv2.LUT(labels, np.ascontiguousarray(bgr_palette[:, c])) for c in range(3)])
    blend = cv2.addWeighted(bgr, 1 - ALPHA, overlay, ALPHA, 0)
    out = bgr.copy()
    cv2.copyTo(blend, (labels > 0).view(np.uint8), out)
    return out


def track_labels(result: TrackResult, frame_hw: tuple[int, int], fps: float | None = None,
                 ms: dict[str, float] | None = None, note: str | None = None) -> list[Label]:
    """Where each text goes: FPS and stage times top left (wrapped to the frame), each object's "id N 0.87" above its
    box (inside the frame, off the other labels), objects lost without a box one per row at the bottom left, and `note`
    (the random-weights warning) at the bottom right."""
    style = TextStyle.for_frame(frame_hw)
    labels = stack(stats_lines(fps, ms, frame_hw[1] - 2 * style.pad, style), style, frame_hw, [])
    boxless = []
    for obj in result.objects:
        colour = LOST_BGR if obj.lost else id_colour(obj.id)
        text = f"id {obj.id} " + ("LOST" if obj.lost and obj.box is None else f"{obj.confidence:.2f}") + (
            " LOST" if obj.lost and obj.box is not None else "")
        if obj.box is None:
            boxless.append((text, colour))
            continue
        label = Label(text, style, swatch=colour)
        x, y = obj.box[:2]
        labels.append(place(label, x, y - label.size[1] if y >= label.size[1] else y + 2, frame_hw, labels))
    if boxless:
        labels += stack([t for t, _ in boxless], style, frame_hw, labels, bottom=True,
                        swatches=[c for _, c in boxless])
    return noted(labels, note, style, frame_hw)


def draw_tracks(bgr: np.ndarray, result: TrackResult, fps: float | None = None,
                ms: dict[str, float] | None = None, note: str | None = None) -> np.ndarray:
    """A copy of a BGR frame with the tracker's masks, boxes (red when lost), labels and timings drawn on it."""
    import cv2

    if result.labels.shape != bgr.shape[:2]:
        raise EdgeDinoError(f"labels {result.labels.shape} do not match the frame {bgr.shape[:2]}")
    out = tint(bgr, result.labels)
    thick = max(2, round(min(bgr.shape[:2]) / 240))
    for obj in result.objects:
        if obj.box is not None:
            x, y, w, h = obj.box
            cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), LOST_BGR if obj.lost else id_colour(obj.id), thick)
    return draw_labels(out, track_labels(result, bgr.shape[:2], fps, ms, note))
