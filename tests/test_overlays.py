"""Overlay regression: the tracking, classify and segment overlays at 320, 640 and 1280 px wide. Every text box stays
inside the frame and off the others, the text sits on a dark box, nothing is drawn outside the boxes, and the picture
equals the reference PNG committed in tests/data/overlays (looked at by eye; `python tests/test_overlays.py`
rewrites them after a deliberate change)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REFS = Path(__file__).parent / "data" / "overlays"
WIDTHS = (320, 640, 1280)
KINDS = ("track", "classify", "segment")
MS = {"read": 1.2, "decode": 3.4, "preprocess": 2.1, "backbone": 41.7, "propagate": 12.3, "draw": 2.2, "output": 0.4}


def scene(width: int) -> np.ndarray:
    """A 4:3 BGR frame in flat colour bands, with a white patch where white text would vanish (top right)."""
    h = width * 3 // 4
    y, x = np.mgrid[0:h, 0:width]
    bgr = np.stack([x * 4 // width * 60, y * 4 // h * 60, np.full_like(x, 170)], -1).astype(np.uint8)
    bgr[: h // 3, width // 2:] = 250
    return bgr


def track_case(bgr: np.ndarray):
    """Objects at the frame's corners and edges: a box touching the top left, one at the right edge, a lost one
    with a box, and two lost without one (whose labels used to pile up in one corner)."""
    from edgedino.track.params import TrackedObject, TrackResult

    h, w = bgr.shape[:2]
    s = w / 320
    boxes = {1: (0, 0, int(80 * s), int(60 * s)), 2: (w - int(70 * s), int(90 * s), int(70 * s), int(80 * s)),
             5: (int(120 * s), int(100 * s), int(60 * s), int(50 * s))}
    labels = np.zeros((h, w), np.uint8)
    for i in (1, 2):
        x, y, bw, bh = boxes[i]
        labels[y:y + bh, x:x + bw] = i
    objects = [TrackedObject(1, boxes[1], 1, 1.0, False), TrackedObject(2, boxes[2], 1, 0.87, False),
               TrackedObject(3, None, 0, 0.0, True), TrackedObject(4, None, 0, 0.0, True),
               TrackedObject(5, boxes[5], 10, 0.12, True)]
    return TrackResult(labels, objects, MS)


def render(kind: str, width: int):
    """(base picture without text, the overlay, its text boxes) for one app at one width."""
    from edgedino.apps import classify, segment
    from edgedino.runtime.task_head import overlay, palette
    from edgedino.track.draw import draw_tracks, tint, track_labels

    bgr = scene(width)
    hw = bgr.shape[:2]
    if kind == "track":
        result = track_case(bgr)
        return tint(bgr, result.labels), draw_tracks(bgr, result, 21.5, MS), track_labels(result, hw, 21.5, MS)
    if kind == "classify":
        top = [("golden retriever", 0.71), ("labrador retriever", 0.2), ("tennis ball", 0.05)]
        return bgr.copy(), classify.draw(bgr.copy(), top, 21.5, MS), classify.overlay_labels(top, 21.5, MS, hw)
    classes = ("background", "sky", "road", "person riding a bicycle")
    mask = np.zeros(hw, np.int64)
    mask[: hw[0] // 3], mask[hw[0] * 2 // 3:], mask[hw[0] // 3: hw[0] * 2 // 3, : width // 4] = 1, 2, 3
    colors, rgb = palette(len(classes)), bgr[..., ::-1].copy()
    base = overlay(rgb, mask, colors, 0.5, background=0)[..., ::-1]  # the background class is not painted
    present = [1, 2, 3]
    return (base, segment.draw(rgb, mask, classes, colors, 0.5, 21.5, MS),
            segment.legend_labels(present, classes, colors, 21.5, MS, hw))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", KINDS)
def test_overlay_text_stays_inside_readable_and_matches_the_reference(kind, width):
    import cv2

    from edgedino.caption import overlaps

    base, out, labels = render(kind, width)
    h, w = out.shape[:2]
    rects = [lb.rect for lb in labels]
    assert len(rects) >= 3
    for i, (x, y, bw, bh) in enumerate(rects):
        assert 0 <= x and x + bw <= w and 0 <= y and y + bh <= h, (labels[i].text, rects[i], (w, h))
        assert not any(overlaps(rects[i], r) for r in rects[i + 1:]), labels[i].text
        box = out[y:y + bh, x:x + bw].max(-1)
        assert np.median(box) < 128 and box.max() > 230, labels[i].text  # white text on a dark box
    inside = np.zeros((h, w), bool)
    for x, y, bw, bh in rects:
        inside[y:y + bh, x:x + bw] = True
    if kind != "track":  # the tracker also draws box edges; the apps draw nothing but the text boxes
        assert np.array_equal(out[~inside], base[~inside])
    assert any("FPS" in lb.text for lb in labels) and any(lb.text.endswith(" ms") for lb in labels)
    ref = cv2.imread(str(REFS / f"{kind}_{width}.png"))
    assert ref is not None, f"no reference {kind}_{width}.png: run python tests/test_overlays.py"
    assert ref.shape == out.shape and np.abs(ref.astype(int) - out).mean() < 0.5


def test_long_stats_wrap_and_long_words_are_cut():
    from edgedino.caption import Label, TextStyle, stats_lines, wrap

    style = TextStyle.for_frame((240, 320))
    lines = stats_lines(9.87, {f"stage{i}": 10.0 * i for i in range(12)}, 300, style)
    assert len(lines) > 1 and all(Label(t, style).size[0] <= 300 for t in lines)
    assert lines[0].startswith("9.9 FPS") and lines[-1].endswith(" ms")
    (cut,) = wrap(["x" * 500], 300, style)
    assert cut.endswith("..") and Label(cut, style).size[0] <= 300


if __name__ == "__main__":
    import cv2

    REFS.mkdir(parents=True, exist_ok=True)
    for k in KINDS:
        for wd in WIDTHS:
            cv2.imwrite(str(REFS / f"{k}_{wd}.png"), render(k, wd)[1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    sys.exit(0)
