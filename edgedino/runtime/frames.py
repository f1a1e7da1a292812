"""Real images for calibration, verification and demos: image folders, videos, the shipped samples. Torch-free."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.preprocess import check_image_file, preprocess, read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
SAMPLES = Path(__file__).resolve().parents[1] / "assets"
HOLDOUT = SAMPLES / "holdout"  # real photos none of the defaults calibrate on: the default verification images


def sample_images() -> list[Path]:
    """The photos shipped with edgedino (OpenCV's sample data)."""
    return sorted(SAMPLES.glob("*.jpg"))


def read_frames(source: str | Path | None, limit: int) -> list[np.ndarray]:
    """Up to `limit` RGB frames from an image folder (recursive), a video (evenly spaced) or the samples (None)."""
    if source is None:
        return [read_image(p) for p in sample_images()[:limit]]
    source = Path(source)
    if source.is_dir():
        return _folder(source, limit)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        return _video(source, limit)
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [read_image(source)]
    raise EdgeDinoError(f"{source}: not an image folder, an image or a video ({', '.join(sorted(VIDEO_SUFFIXES))})")


def _folder(folder: Path, limit: int) -> list[np.ndarray]:
    import cv2

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = []
    for p in files:
        check_image_file(p)
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if len(frames) == limit:
            break
    if not frames:
        raise EdgeDinoError(f"{folder} has no readable images ({len(files)} image files found)")
    return frames


def _video(path: Path, limit: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    if total <= 0:
        cap.release()
        raise EdgeDinoError(f"cannot read video {path} (missing, corrupt, or a codec OpenCV lacks)")
    frames = []
    for index in np.linspace(0, total - 1, min(limit, total)).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, bgr = cap.read()
        if ok:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise EdgeDinoError(f"cannot decode any frame of video {path}")
    return frames


def model_inputs(frames: list[np.ndarray], size_hw: tuple[int, int], input_format: str = "float32",
                 mean=None, std=None) -> np.ndarray:
    """Frames as one (N, ...) array in an artifact's input format: NCHW normalised float32, or NHWC uint8."""
    import cv2

    if input_format == "uint8":
        h, w = size_hw
        return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    kwargs = {k: v for k, v in (("mean", mean), ("std", std)) if v is not None}
    return np.concatenate([preprocess(f, size_hw, **kwargs) for f in frames])
