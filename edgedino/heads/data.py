"""Labelled image folders for heads, and their held-out split.

classify: DIR/<class>/*.jpg (one folder per class, its name is the class name).
segment:  DIR/images/<name>.jpg with DIR/masks/<name>.png (one class index per pixel, 255 = unlabelled) and
          an optional DIR/classes.txt (one class name per line, index order).
Either layout may instead have DIR/train/ and DIR/val/ holding it: that split is used as it is; otherwise
`val_fraction` of the images (of each class, for classify) is held out, the same ones on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.frames import IMAGE_SUFFIXES
from edgedino.runtime.task_head import IGNORE


@dataclass
class Split:
    """One side of a dataset: image files and their targets (class indices, or mask files)."""

    images: list[Path]
    targets: list  # classify: int per image; segment: mask Path per image


@dataclass
class Dataset:
    task: str
    root: Path
    classes: tuple[str, ...]
    train: Split
    val: Split


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _held_out(n: int, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of the n items to hold out: at least one when n >= 2, never all."""
    k = min(n - 1, max(1 if n >= 2 else 0, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    out = np.zeros(n, bool)
    out[order[:k]] = True
    return out


def _classify(root: Path) -> tuple[tuple[str, ...], Split]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes, images, targets = [], [], []
    for folder in folders:
        files = _images(folder)
        if not files:
            raise EdgeDinoError(f"class folder {folder} has no images")
        images += files
        targets += [len(classes)] * len(files)
        classes.append(folder.name)
    if len(classes) < 2:
        raise EdgeDinoError(f"{root} needs one sub-folder per class (at least 2), found {len(classes)}")
    return tuple(classes), Split(images, targets)


def _segment(root: Path) -> tuple[tuple[str, ...] | None, Split]:
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise EdgeDinoError(f"{root} needs images/ and masks/ folders (masks/<name>.png: a class index per pixel)")
    images = _images(root / "images")
    if not images:
        raise EdgeDinoError(f"{root / 'images'} has no images")
    masks = [root / "masks" / f"{p.stem}.png" for p in images]
    missing = [m for m in masks if not m.exists()]
    if missing:
        raise EdgeDinoError(f"no mask for {len(missing)} image(s), first: {missing[0]} is missing")
    names = root / "classes.txt"
    classes = tuple(n.strip() for n in names.read_text().splitlines() if n.strip()) if names.exists() else None
    return classes, Split(images, masks)


def read_mask(path: Path, num_classes: int) -> np.ndarray:
    """A (H, W) uint8 class-index mask; an error naming the file if it has other values."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.ndim != 2 or mask.dtype != np.uint8:
        raise EdgeDinoError(f"{path}: a mask must be a single-channel 8-bit PNG of class indices")
    bad = (mask >= num_classes) & (mask != IGNORE)
    if bad.any():
        raise EdgeDinoError(f"{path}: value {int(mask[bad][0])} is not a class index (0-{num_classes - 1}, or "
                            f"{IGNORE} for unlabelled)")
    return mask


def _mask_classes(masks: list[Path]) -> tuple[str, ...]:
    """Class names "0".."K-1" from the largest index found in the masks (no classes.txt)."""
    top = 0
    for m in masks:
        mask = read_mask(m, IGNORE)
        top = max(top, int(mask[mask != IGNORE].max(initial=0)))
    return tuple(str(i) for i in range(max(top + 1, 2)))


def _read(task: str, root: Path) -> tuple[tuple[str, ...] | None, Split]:
    return _classify(root) if task == "classify" else _segment(root)


def load_dataset(task: str, root: str | Path, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The dataset at `root` for `task`, split into train and held-out val."""
    root = Path(root)
    if not root.is_dir():
        raise EdgeDinoError(f"--data {root}: not a folder")
    if not 0 < val_fraction < 1:
        raise EdgeDinoError(f"the held-out fraction must be between 0 and 1, got {val_fraction}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes, train = _read(task, root / "train")
        val_classes, val = _read(task, root / "val")
        if task == "classify" and val_classes != classes:
            raise EdgeDinoError(f"train/ and val/ have different classes: {classes} vs {val_classes}")
    else:
        classes, full = _read(task, root)
        targets = np.asarray([0] * len(full.images) if task == "segment" else full.targets)
        hold = np.zeros(len(full.images), bool)
        for c in np.unique(targets):
            idx = np.flatnonzero(targets == c)
            hold[idx] = _held_out(len(idx), val_fraction, seed + int(c))
        train = Split(*[[v for v, h in zip(col, hold, strict=True) if not h] for col in (full.images, full.targets)])
        val = Split(*[[v for v, h in zip(col, hold, strict=True) if h] for col in (full.images, full.targets)])
    if task == "segment" and classes is None:
        classes = _mask_classes(train.targets + val.targets)
    if not train.images or not val.images:
        raise EdgeDinoError(f"{root}: need images for both training and the held-out split")
    return Dataset(task, root, classes, train, val)
