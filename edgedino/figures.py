"""Matplotlib figures written as PNG files, atomically, with an optional corner note (the random-weights warning)
drawn by the same caption helper as the video overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_bgr(fig) -> np.ndarray:
    """The figure rendered as a BGR image, cropped to what it draws (bbox_inches="tight")."""
    import io

    import cv2

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)


def noted(bgr: np.ndarray, note: str | None) -> np.ndarray:
    """The picture over a white band holding `note` at its right, so the note covers nothing drawn (the picture as
    it is when note is None)."""
    from edgedino.caption import Label, TextStyle, corner, draw_labels

    if note is None:
        return bgr
    style = TextStyle.for_frame(bgr.shape[:2], factor=0.7)
    band = np.full((Label(note, style).size[1] + 2 * style.pad, bgr.shape[1], 3), 255, np.uint8)
    out = np.concatenate([bgr, band])
    return draw_labels(out, [corner(note, style, out.shape[:2], [])])


def write_png(bgr: np.ndarray, path: str | Path) -> Path:
    """A BGR image written as a PNG file, atomically."""
    import cv2

    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise EdgeDinoError(f"could not encode {path} as PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(png.tobytes())
    return Path(path)


def save_figure(fig, path: str | Path, note: str | None = None) -> Path:
    """The figure as a PNG at `path` (with `note` in its corner), then closed."""
    try:
        return write_png(noted(figure_bgr(fig), note), path)
    finally:
        pyplot().close(fig)
