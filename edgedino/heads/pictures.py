"""Pictures of a head's held-out results: the confusion matrix, and image | truth | prediction overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.figures import noted, pyplot, save_figure, write_png
from edgedino.heads.data import read_mask
from edgedino.heads.evaluate import Evaluation
from edgedino.runtime.preprocess import read_image
from edgedino.runtime.task_head import background_class, overlay, palette

COLUMNS = ("image", "truth", "prediction")


def confusion_png(ev: Evaluation, path: Path, note: str | None = None) -> Path:
    """Row-normalised confusion matrix with counts, titled with the score and the chance level; `note` (the
    random-weights warning) under it."""
    plt = pyplot()
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
    return save_figure(fig, path, note)


def _legend(width: int, classes: tuple[str, ...], colors: np.ndarray, background: int | None) -> np.ndarray:
    """A white bar with a swatch and the name of every painted class (the background class is not painted)."""
    import cv2

    bar = np.full((22, width, 3), 255, np.uint8)
    x = 4
    for name, color in [(n, c) for i, (n, c) in enumerate(zip(classes, colors, strict=True)) if i != background]:
        cv2.rectangle(bar, (x, 5), (x + 12, 17), tuple(int(c) for c in color), -1)
        cv2.putText(bar, name, (x + 16, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 24 + 8 * len(name)
    return bar


def titled(columns: list[np.ndarray], titles: tuple[str, ...]) -> np.ndarray:
    """RGB pictures of one height side by side, 6 white pixels apart, each under its title in black on white."""
    import cv2

    from edgedino.caption import FONT, TextStyle

    style = TextStyle.for_frame(columns[0].shape[:2])
    _, th, base = style.text_size("Agy")
    heads = []
    for picture, title in zip(columns, titles, strict=True):
        head = np.full((th + base + 2 * style.pad, picture.shape[1], 3), 255, np.uint8)
        tw = style.text_size(title)[0]
        cv2.putText(head, title, (max((picture.shape[1] - tw) // 2, 0), style.pad + th), FONT, style.scale, (0, 0, 0),
                    style.thickness, cv2.LINE_AA)
        heads.append(np.concatenate([head, picture]))
    gap = np.full((heads[0].shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([x for h in heads for x in (gap, h)][1:], axis=1)


def overlay_pngs(images: list[Path], masks: list[Path], preds: list[np.ndarray], classes: tuple[str, ...],
                 out_dir: Path, limit: int = 8, note: str | None = None) -> list[Path]:
    """image | truth | prediction, titled, for the first `limit` held-out images, with a colour legend (the
    background class left unpainted) and `note` (the random-weights warning) under them."""
    import cv2

    colors, background = palette(len(classes)), background_class(classes)
    written = []
    for image, mask, pred in list(zip(images, masks, preds, strict=True))[:limit]:
        rgb = read_image(image)
        truth = read_mask(mask, len(classes))
        row = titled([rgb, overlay(rgb, truth, colors, background=background),
                      overlay(rgb, pred, colors, background=background)], COLUMNS)
        picture = np.concatenate([_legend(row.shape[1], classes, colors, background), row])
        written.append(write_png(noted(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), note),
                                 out_dir / f"overlay_{image.stem}.png"))
    return written
