"""Image reading and preprocessing, once for every consumer (CLI, runtime, bench, apps). Torch-free."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Limits checked before anything is allocated: a tiny file or flag must not ask for gigabytes.
MAX_ASPECT = 16  # longest over shortest side of an image resized with its aspect kept
MAX_INPUT_PIXELS = 2048 * 2048  # a model input (ViT-S/16 at 2048x2048: 16384 tokens)
MAX_IMAGE_PIXELS = 100_000_000  # a decoded image (300 MB as RGB)


def parse_imgsz(text: str | int | tuple) -> tuple[int, int]:
    """'224' -> (224, 224); '224x320' or '224,320' -> (224, 320) as (height, width)."""
    if isinstance(text, int):
        return text, text
    if isinstance(text, tuple):
        return int(text[0]), int(text[1])
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*", str(text))
    if not m:
        raise EdgeDinoError(f"image size {text!r} is not N or HxW (e.g. 224 or 240x320)")
    h = int(m[1])
    return h, int(m[2] or h)


def check_size(hw: tuple[int, int], stride: int) -> tuple[int, int]:
    """The size unchanged, or an error: edgedino never crops or pads silently."""
    h, w = hw
    if h <= 0 or w <= 0 or h % stride or w % stride:
        near = [max(stride, round(s / stride) * stride) for s in (h, w)]
        raise EdgeDinoError(f"image size {h}x{w} is not a multiple of the model's stride {stride} "
                            f"(nearest: {near[0]}x{near[1]})")
    return check_pixels((h, w))


def check_pixels(hw: tuple[int, int]) -> tuple[int, int]:
    """The model input size unchanged, or an error when it is over MAX_INPUT_PIXELS."""
    h, w = hw
    if h * w > MAX_INPUT_PIXELS:
        raise EdgeDinoError(f"input size {h}x{w} is {h * w / 1e6:.1f} megapixels, over edgedino's limit of "
                            f"{MAX_INPUT_PIXELS / 1e6:.1f} (2048x2048) for a model input")
    return h, w


def fit_size(image_hw: tuple[int, int], short_side: int, stride: int) -> tuple[int, int]:
    """Keep the aspect ratio, short side = `short_side`, each side rounded to a multiple of `stride`."""
    h, w = image_hw
    if min(h, w) <= 0 or max(h, w) > MAX_ASPECT * min(h, w):
        raise EdgeDinoError(f"a {h}x{w} image has an aspect ratio over {MAX_ASPECT}:1, the most edgedino resizes "
                            "with the aspect kept: crop it first")
    scale = short_side / min(h, w)
    return check_pixels(tuple(max(stride, round(s * scale / stride) * stride) for s in (h, w)))


def check_image_file(path: str | Path) -> None:
    """Refuse, before decoding, an image whose header declares more than MAX_IMAGE_PIXELS."""
    from edgedino.runtime.image_header import header_size

    size = header_size(path)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise EdgeDinoError(f"{path} is a {size[0]}x{size[1]} image ({size[0] * size[1] / 1e6:.0f} megapixels), "
                            f"over edgedino's limit of {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")


def read_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array; an EdgeDinoError naming the file if it cannot be read."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"image not found: {path}")
    check_image_file(path)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise EdgeDinoError(f"cannot read {path} as an image (not a format OpenCV decodes, or corrupt)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def preprocess(rgb: np.ndarray, size_hw: tuple[int, int], mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """Resize an RGB uint8 image to exactly (h, w) and normalise: a float32 (1, 3, h, w) array."""
    import cv2

    h, w = size_hw
    if rgb.shape[:2] != (h, w):
        shrink = h < rgb.shape[0] and w < rgb.shape[1]
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    x = (rgb.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
