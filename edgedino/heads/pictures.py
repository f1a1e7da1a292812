"""Pictures of a head's held-out results: the confusion matrix, and image | truth | prediction overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError
from edgedino.heads.data import read_mask
from edgedino.heads.evaluate import Evaluation
from edgedino.runtime.preprocess import read_image
from edgedino.runtime.task_head import overlay, palette


def confusion_png(ev: Evaluation, path: Path) -> Path:
    """Row-normalised confusion matrix with counts, titled with the score and the chance level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = ev.confusion
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    n = len(ev.classes)
    size = 2.5 + 0.45 * n
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), ev.classes, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), ev.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for (i, j), v in np.ndenumerate(conf):
            ax.text(j, i, f"{v}", ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    unit = "pixels" if ev.task == "segment" else "images"
    ax.set_title(f"{ev.metric} {ev.score:.3f} (chance {ev.chance:.3f})\n{ev.images} held-out images, counts in {unit}",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _legend(width: int, classes: tuple[str, ...], colors: np.ndarray) -> np.ndarray:
    import cv2

    bar = np.full((22, width, 3), 255, np.uint8)
    x = 4
    for name, color in zip(classes, colors, strict=True):
        cv2.rectangle(bar, (x, 5), (x + 12, 17), tuple(int(c) for c in color), -1)
        cv2.putText(bar, name, (x + 16, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 24 + 8 * len(name)
    return bar


def overlay_pngs(images: list[Path], masks: list[Path], preds: list[np.ndarray], classes: tuple[str, ...],
                 out_dir: Path, limit: int = 8) -> list[Path]:
    """image | ground truth | prediction for the first `limit` held-out images, with a colour legend."""
    import cv2

    colors = palette(len(classes))
    written = []
    for image, mask, pred in list(zip(images, masks, preds, strict=True))[:limit]:
        rgb = read_image(image)
        truth = read_mask(mask, len(classes))
        gap = np.full((rgb.shape[0], 6, 3), 255, np.uint8)
        row = np.concatenate([rgb, gap, overlay(rgb, truth, colors), gap, overlay(rgb, pred, colors)], axis=1)
        picture = np.concatenate([_legend(row.shape[1], classes, colors), row])
        path = out_dir / f"overlay_{image.stem}.png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise EdgeDinoError(f"could not encode {path}")
        with atomic_path(path) as tmp:
            tmp.write_bytes(png.tobytes())
        written.append(path)
    return written
