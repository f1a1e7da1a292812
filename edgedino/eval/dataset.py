"""Labelled image sets for evaluation: one subfolder per class, split into train and test. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.frames import IMAGE_SUFFIXES


@dataclass
class Split:
    """Image files with integer labels, and the class names the labels index."""

    train: list[Path]
    train_labels: np.ndarray
    test: list[Path]
    test_labels: np.ndarray
    classes: list[str]


def _classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (recursive), for every subfolder that holds images."""
    out = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            out[sub.name] = files
    return out


def _flatten(classes: dict[str, list[Path]], names: list[str]) -> tuple[list[Path], np.ndarray]:
    files = [f for c in names for f in classes.get(c, [])]
    labels = np.array([i for i, c in enumerate(names) for _ in classes.get(c, [])], dtype=np.int64)
    return files, labels


def load_split(folder: str | Path, test_fraction: float = 0.3, seed: int = 0) -> Split:
    """`folder/train/<class>/...` and `folder/test|val/<class>/...` if present, else a stratified seeded split
    of `folder/<class>/...` with `test_fraction` of each class held out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeDinoError(f"--data {folder}: not a folder (expected one subfolder of images per class)")
    held = next((folder / n for n in ("test", "val") if (folder / n).is_dir()), None)
    if (folder / "train").is_dir() and held is not None:
        train, test = _classes(folder / "train"), _classes(held)
        names = sorted(set(train) | set(test))
        return Split(*_flatten(train, names), *_flatten(test, names), names)
    classes = _classes(folder)
    if len(classes) < 2:
        raise EdgeDinoError(f"{folder} has {len(classes)} class subfolder(s) with images: a labelled set needs "
                            "at least 2 (one subfolder of images per class)")
    if not 0 < test_fraction < 1:
        raise EdgeDinoError(f"test fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for name, files in classes.items():
        if len(files) < 2:
            raise EdgeDinoError(f"class {name!r} has {len(files)} image: each class needs 2 or more to split")
        order = rng.permutation(len(files))
        n_test = min(max(1, round(len(files) * test_fraction)), len(files) - 1)
        test[name] = [files[i] for i in sorted(order[:n_test])]
        train[name] = [files[i] for i in sorted(order[n_test:])]
    names = list(classes)
    return Split(*_flatten(train, names), *_flatten(test, names), names)
