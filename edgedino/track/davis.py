"""DAVIS-2017-format folders: JPEGImages/480p/<seq>/*.jpg and Annotations/480p/<seq>/*.png (palette object ids).
Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.track.palette import read_indexed_png, write_indexed_png

RESOLUTION = "480p"


@dataclass
class Sequence:
    """One video: its frames in order, and the annotation of each frame (None where none is given)."""

    name: str
    frames: list[Path]
    masks: list[Path | None]

    def frame(self, i: int) -> np.ndarray:
        from edgedino.runtime.preprocess import read_image

        return read_image(self.frames[i])

    @cached_property
    def size(self) -> tuple[int, int]:
        """(H, W) of the first frame: every frame and annotation of a sequence has it."""
        return self.frame(0).shape[:2]

    def mask(self, i: int) -> np.ndarray:
        """The annotation of frame i, checked to be the frames' size (a scaled mask would score wrong pixels)."""
        path = self.masks[i]
        if path is None:
            raise EdgeDinoError(f"sequence {self.name} has no annotation for frame {self.frames[i].name}")
        mask = read_indexed_png(path)
        if mask.shape[:2] != self.size:
            raise EdgeDinoError(f"{path} is {mask.shape[1]}x{mask.shape[0]}, but the frames of sequence {self.name} "
                                f"are {self.size[1]}x{self.size[0]}: annotations must be the frames' size")
        return mask


def _sequence(name: str, frame_dir: Path, mask_dir: Path) -> Sequence:
    frames = sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not frames:
        raise EdgeDinoError(f"sequence {name}: no frames in {frame_dir}")
    masks = [mask_dir / f"{p.stem}.png" for p in frames]
    if not masks[0].is_file():
        raise EdgeDinoError(f"sequence {name}: the first frame's annotation {masks[0]} is missing "
                            "(tracking starts from it)")
    return Sequence(name, frames, [m if m.is_file() else None for m in masks])


def read_dataset(root: str | Path, names: list[str] | None = None) -> list[Sequence]:
    """The sequences of a DAVIS-format folder (all, or those named), each checked to have a first annotation."""
    root = Path(root)
    images, annotations = root / "JPEGImages" / RESOLUTION, root / "Annotations" / RESOLUTION
    for folder in (images, annotations):
        if not folder.is_dir():
            raise EdgeDinoError(f"{root} is not a DAVIS-format folder: {folder} is missing (expected JPEGImages/"
                                f"{RESOLUTION}/<sequence>/*.jpg and Annotations/{RESOLUTION}/<sequence>/*.png)")
    available = sorted(p.name for p in images.iterdir() if p.is_dir())
    missing = sorted(set(names or []) - set(available))
    if missing:
        raise EdgeDinoError(f"{root}: no sequence named {', '.join(missing)} (found: {', '.join(available)})")
    chosen = names or available
    if not chosen:
        raise EdgeDinoError(f"{images} has no sequence folders")
    return [_sequence(n, images / n, annotations / n) for n in chosen]


def write_sequence(root: str | Path, name: str, frames: list[np.ndarray], masks: list[np.ndarray]) -> None:
    """Write RGB frames as JPEGs (quality 95) and id masks as DAVIS palette PNGs, named 00000, 00001, ..."""
    import cv2

    from edgedino.atomic import atomic_path

    root = Path(root)
    for i, (rgb, mask) in enumerate(zip(frames, masks, strict=True)):
        with atomic_path(root / "JPEGImages" / RESOLUTION / name / f"{i:05d}.jpg") as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise EdgeDinoError(f"cannot write {tmp}")
        write_indexed_png(root / "Annotations" / RESOLUTION / name / f"{i:05d}.png", mask)
