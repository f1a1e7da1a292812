"""Small labelled datasets made from real images, in the folder layouts `edgedino head train` reads.

- digits: OpenCV's handwritten digits sheet (20x20 cells, each class a band of rows) cut into one image per
  digit, DIR/<digit>/*.png.
- composites: real photos as backgrounds with shapes cut from texture photos pasted on them; the mask
  records which texture covers each pixel (DIR/images, DIR/masks, DIR/classes.txt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.preprocess import read_image

CELL = 20


def _write(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise EdgeDinoError(f"could not write {path}")


def digits(sheet: str | Path, out: str | Path, per_class: int | None = None) -> Path:
    """One PNG per digit from a digits sheet whose rows are split evenly among the 10 classes."""
    import cv2

    gray = cv2.imread(str(sheet), cv2.IMREAD_GRAYSCALE)
    if gray is None or gray.shape[0] % (10 * CELL) or gray.shape[1] % CELL:
        raise EdgeDinoError(f"{sheet}: not a digits sheet (20x20 cells, a multiple of 10 rows)")
    out = Path(out)
    band = gray.shape[0] // 10
    for k in range(10):
        rows = gray[k * band:(k + 1) * band]
        cells = [rows[r:r + CELL, c:c + CELL] for r in range(0, band, CELL) for c in range(0, rows.shape[1], CELL)]
        for i, cell in enumerate(cells[:per_class]):
            _write(out / str(k) / f"{k}_{i:04d}.png", cell)
    return out


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A filled ellipse or polygon covering roughly 5-30% of a size x size square."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    centre = rng.integers(size // 5, size - size // 5, 2)
    if rng.random() < 0.5:
        axes = tuple(int(a) for a in rng.integers(size // 8, size // 3, 2))
        cv2.ellipse(mask, tuple(int(c) for c in centre), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
        radii = rng.uniform(size / 8, size / 3, 6)
        pts = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], -1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    return mask


def _crop(rng: np.random.Generator, rgb: np.ndarray, size: int) -> np.ndarray:
    """A random square crop (a third to all of the short side) resized to size x size."""
    import cv2

    h, w = rgb.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(rgb[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def composites(backgrounds: list[Path], textures: list[Path], out: str | Path, count: int, size: int = 160,
               seed: int = 0) -> Path:
    """`count` images: a background crop with 1-3 shapes of texture crops; class 0 background, i+1 texture i."""
    import cv2

    if not backgrounds or not textures:
        raise EdgeDinoError("composites need at least one background and one texture photo")
    rng = np.random.default_rng(seed)
    bg = [read_image(p) for p in backgrounds]
    tex = [read_image(p) for p in textures]
    out = Path(out)
    for i in range(count):
        image = _crop(rng, bg[i % len(bg)], size)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(0, len(tex)))
            shape = _shape_mask(rng, size).astype(bool)
            image[shape] = _crop(rng, tex[k], size)[shape]
            mask[shape] = k + 1
        _write(out / "images" / f"{i:04d}.jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        _write(out / "masks" / f"{i:04d}.png", mask)
    names = ["background", *(p.stem for p in textures)]
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    return out
