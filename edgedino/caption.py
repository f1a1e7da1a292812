"""Readable text over video frames: each string drawn once, in white, on a filled semi-transparent dark box sized by
cv2.getTextSize for the thickness used, with the font scaled to the frame, kept inside it and off other labels.
Torch-free (OpenCV, imported when drawing)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
TEXT_BGR = (255, 255, 255)
BOX_ALPHA = 0.7  # how dark the box under the text is: 0 invisible, 1 black
RANDOM_WEIGHTS = "random weights: not a trained model"  # the corner note of every picture made from random weights


@dataclass(frozen=True)
class TextStyle:
    """Font scale and line thickness of the labels on one frame, and the padding around their text."""

    scale: float
    thickness: int

    @classmethod
    def for_frame(cls, frame_hw: tuple[int, int], factor: float = 1.0) -> TextStyle:
        """Text that reads at arm's length on this frame: 0.4 at 240 px short side, growing with the frame."""
        scale = factor * min(max(min(frame_hw) / 800, 0.4), 1.1)
        return cls(round(scale, 2), 1 if scale < 0.75 else 2)

    @property
    def pad(self) -> int:
        return max(2, round(6 * self.scale))

    def text_size(self, text: str) -> tuple[int, int, int]:
        """(width, height above the baseline, depth below it) of `text` in pixels, for this scale and thickness; the
        heights are those of tall letters and descenders, so every label of a style is as high as the others."""
        import cv2

        (w, _), _ = cv2.getTextSize(text, FONT, self.scale, self.thickness)
        (_, h), base = cv2.getTextSize("Agy|", FONT, self.scale, self.thickness)
        return w, h, base


@dataclass(frozen=True)
class Label:
    """One text box: its text, top-left corner and size (text plus padding, plus a colour swatch when given)."""

    text: str
    style: TextStyle
    x: int = 0
    y: int = 0
    swatch: tuple[int, int, int] | None = None  # BGR colour square before the text (an object's or class's colour)

    @property
    def size(self) -> tuple[int, int]:
        w, h, base = self.style.text_size(self.text)
        pad = self.style.pad
        return w + 2 * pad + (h + base + pad if self.swatch else 0), h + base + 2 * pad

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the box."""
        return (self.x, self.y, *self.size)


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x, y, w, h) rectangles share a pixel."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def place(label: Label, x: int, y: int, frame_hw: tuple[int, int], taken: list[Label]) -> Label:
    """The label at (x, y) moved inside the frame, then down (or, at the bottom, up) a row at a time until it covers
    no label in `taken`; where no free row exists it stays at its place inside the frame."""
    w, h = label.size
    fh, fw = frame_hw
    x, y = min(max(x, 0), max(fw - w, 0)), min(max(y, 0), max(fh - h, 0))
    rows = [y + k * (h + 1) for k in range(fh // (h + 1) + 1)] + [y - k * (h + 1) for k in range(1, fh // (h + 1))]
    for row in rows:
        moved = replace(label, x=x, y=row)
        if 0 <= row <= fh - h and not any(overlaps(moved.rect, t.rect) for t in taken):
            return moved
    return replace(label, x=x, y=y)


def stack(texts: list[str], style: TextStyle, frame_hw: tuple[int, int], taken: list[Label],
          bottom: bool = False, swatches: list | None = None) -> list[Label]:
    """Labels one under the other at the left edge, from the top (or upwards from the bottom), off `taken`."""
    margin = style.pad
    out: list[Label] = []
    for i, text in enumerate(texts):
        label = Label(text, style, swatch=swatches[i] if swatches else None)
        h = label.size[1]
        y = margin + i * (h + 1) if not bottom else frame_hw[0] - margin - (len(texts) - i) * (h + 1)
        out.append(place(label, margin, y, frame_hw, taken + out))
    return out


def corner(text: str, style: TextStyle, frame_hw: tuple[int, int], taken: list[Label]) -> Label:
    """A label at the bottom right corner, moved up off the labels in `taken`."""
    label = Label(fit(text, frame_hw[1] - 2 * style.pad, style), style)
    w, h = label.size
    return place(label, frame_hw[1] - style.pad - w, frame_hw[0] - style.pad - h, frame_hw, taken)


def noted(labels: list[Label], note: str | None, style: TextStyle, frame_hw: tuple[int, int]) -> list[Label]:
    """The labels, and `note` (the random-weights warning) in the bottom right corner off them when given."""
    return labels + [corner(note, style, frame_hw, labels)] if note else labels


def fit(text: str, width: int, style: TextStyle) -> str:
    """`text`, cut with '..' at the end until its box is at most `width` pixels wide."""
    while len(text) > 3 and Label(text, style).size[0] > width:
        text = text[:-3] + ".."
    return text


def wrap(parts: list[str], width: int, style: TextStyle) -> list[str]:
    """The parts joined with spaces into as few lines as fit `width` pixels (a part too wide alone is cut)."""
    lines: list[str] = []
    for part in parts:
        if lines and Label(f"{lines[-1]} {part}", style).size[0] <= width:
            lines[-1] = f"{lines[-1]} {part}"
        else:
            lines.append(fit(part, width, style))
    return lines


def stats_lines(fps: float | None, ms: dict[str, float] | None, width: int, style: TextStyle) -> list[str]:
    """'21.5 FPS', then 'stage 12.3' per stage and 'ms', wrapped to `width` pixels."""
    parts = [f"{fps:.1f} FPS"] if fps is not None else []
    if ms:
        items = [f"{k} {v:.1f}" if v < 10 else f"{k} {v:.0f}" for k, v in ms.items()]
        parts += [*items[:-1], f"{items[-1]} ms"]
    return wrap(parts, width, style)


def draw_labels(bgr: np.ndarray, labels: list[Label]) -> np.ndarray:
    """Each label drawn once, in place on `bgr`: the darkened box, the swatch, then the white text."""
    import cv2

    for label in labels:
        x, y, w, h = label.rect
        roi = bgr[y:y + h, x:x + w]
        roi[:] = cv2.addWeighted(roi, 1 - BOX_ALPHA, np.zeros_like(roi), BOX_ALPHA, 0)
        tw, th, base = label.style.text_size(label.text)
        pad, left = label.style.pad, x + label.style.pad
        if label.swatch is not None:
            side = th + base
            cv2.rectangle(bgr, (left, y + pad), (left + side - 1, y + pad + side - 1), label.swatch, -1)
            cv2.rectangle(bgr, (left, y + pad), (left + side - 1, y + pad + side - 1), TEXT_BGR, 1)
            left += side + pad
        cv2.putText(bgr, label.text, (left, y + pad + th), FONT, label.style.scale, TEXT_BGR, label.style.thickness,
                    cv2.LINE_AA)
    return bgr
