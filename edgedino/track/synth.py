"""Small DAVIS-format sequences made from the shipped photos, with exact masks: objects cut out of one photo
move (and turn and scale) over another while the camera pans, and a bar cut from a third photo passes in front
of them. For tests and for users without DAVIS. Torch-free.

    python -m edgedino.track.synth OUT [--count 3] [--frames 16] [--objects 2] [--size 480x640]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np


@dataclass
class SynthConfig:
    """One generated sequence."""

    frames: int = 16
    size: tuple[int, int] = (240, 320)  # (height, width)
    objects: int = 1  # object ids 1..objects, later ids in front
    speed: float = 0.025  # object speed per frame, as a fraction of the frame height (before camera motion)
    pan: float = 0.008  # camera speed per frame, as a fraction of the frame height
    occluder: bool = True  # a bar passing in front of the objects
    seed: int = 0


def _blob(rng: np.random.Generator, radius: int) -> np.ndarray:
    """(2r+1, 2r+1) bool: a star-convex shape with a wavy outline."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    theta, r = np.arctan2(y, x), np.hypot(x, y)
    wave = sum(rng.uniform(0.04, 0.12) * np.sin(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return r <= radius * (0.8 + wave)


def _bounce(start: float, step: float, lo: float, hi: float) -> float:
    """Position after moving `step` from `start`, reflected to stay within [lo, hi]."""
    span = hi - lo
    p = (start - lo + step) % (2 * span)
    return lo + (p if p <= span else 2 * span - p)


class Scene:
    """Deterministic renderer: `render(t)` gives frame t (RGB uint8) and its exact id mask."""

    def __init__(self, config: SynthConfig):
        from edgedino.runtime.frames import sample_images
        from edgedino.runtime.preprocess import read_image

        self.config = c = config
        rng = np.random.default_rng(c.seed)
        photos = [read_image(p) for p in sample_images()]
        order = rng.permutation(len(photos))
        h, w = c.size
        import cv2

        self.background = cv2.resize(photos[order[0]], (int(w * 1.6), int(h * 1.6)), interpolation=cv2.INTER_AREA)
        self.occluder = cv2.resize(photos[order[1]], (w, h), interpolation=cv2.INTER_AREA)
        self.objects = []
        for k in range(c.objects):
            radius = int(min(h, w) * rng.uniform(0.16, 0.22))
            shape = _blob(rng, radius)
            src = photos[order[2 + k % (len(photos) - 2)]]
            grow = max(shape.shape[0] + 1, 1) / min(src.shape[:2])
            if grow > 1:
                src = cv2.resize(src, None, fx=grow, fy=grow, interpolation=cv2.INTER_LINEAR)
            y0, x0 = (int(rng.integers(0, s - shape.shape[i])) for i, s in enumerate(src.shape[:2]))
            texture = src[y0:y0 + shape.shape[0], x0:x0 + shape.shape[1]].copy()
            angle = rng.uniform(0, 2 * np.pi)
            self.objects.append({"shape": shape, "texture": texture, "radius": radius,
                                 "start": (rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)),
                                 "velocity": (c.speed * h * np.cos(angle), c.speed * h * np.sin(angle)),
                                 "spin": rng.uniform(-3, 3), "grow": rng.uniform(-0.01, 0.01)})
        self.cam_dir = rng.uniform(0, 2 * np.pi)

    def _camera(self, t: int) -> tuple[int, int]:
        bh, bw = self.background.shape[:2]
        h, w = self.config.size
        step = self.config.pan * h * t
        x = _bounce((bw - w) / 2, step * np.cos(self.cam_dir), 0, bw - w)
        y = _bounce((bh - h) / 2, step * np.sin(self.cam_dir), 0, bh - h)
        return int(round(x)), int(round(y))

    def render(self, t: int, hide: frozenset[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """Frame t and its (H, W) uint8 id mask; ids in `hide` are left out (to check the masks)."""
        import cv2

        h, w = self.config.size
        cx, cy = self._camera(t)
        frame = self.background[cy:cy + h, cx:cx + w].copy()
        mask = np.zeros((h, w), np.uint8)
        for i, obj in enumerate(self.objects, start=1):
            r = obj["radius"]
            px = _bounce(obj["start"][0], obj["velocity"][0] * t, r, w - r)
            py = _bounce(obj["start"][1], obj["velocity"][1] * t, r, h - r)
            m = cv2.getRotationMatrix2D((r, r), obj["spin"] * t, 1 + obj["grow"] * t)
            m[:, 2] += (px - r, py - r)
            shape = cv2.warpAffine(obj["shape"].astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0
            if i in hide:
                continue
            texture = cv2.warpAffine(obj["texture"], m, (w, h), flags=cv2.INTER_LINEAR)
            frame[shape], mask[shape] = texture[shape], i
        if self.config.occluder:
            self._occlude(frame, mask, t)
        return frame, mask

    def _occlude(self, frame: np.ndarray, mask: np.ndarray, t: int) -> None:
        """A vertical bar, a tenth of the width, sweeping across the frame once over the sequence."""
        h, w = self.config.size
        bar = max(4, w // 10)
        x = int(round(-bar + (w + bar) * t / max(self.config.frames - 1, 1)))
        x0, x1 = max(x, 0), min(x + bar, w)
        if x1 > x0:
            frame[:, x0:x1] = self.occluder[:, x0:x1]
            mask[:, x0:x1] = 0


def make_sequence(config: SynthConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """All frames (RGB uint8) and masks (uint8 ids) of one sequence."""
    scene = Scene(config)
    pairs = [scene.render(t) for t in range(config.frames)]
    return [f for f, _ in pairs], [m for _, m in pairs]


def write_dataset(root, count: int, config: SynthConfig | None = None) -> list[str]:
    """Write `count` sequences (seeds config.seed, config.seed + 1, ...) as a DAVIS-format folder; their names."""
    from dataclasses import replace

    from edgedino.track.davis import write_sequence

    config = config or SynthConfig()
    names = []
    for k in range(count):
        name = f"synth{k:02d}"
        frames, masks = make_sequence(replace(config, seed=config.seed + k))
        write_sequence(root, name, frames, masks)
        names.append(name)
    return names


def main(argv: list[str] | None = None) -> None:
    """Command line: write generated sequences to a folder."""
    p = argparse.ArgumentParser(prog="python -m edgedino.track.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder (DAVIS layout)")
    p.add_argument("--count", type=int, default=3, help="number of sequences (default 3)")
    p.add_argument("--frames", type=int, default=16, help="frames per sequence (default 16)")
    p.add_argument("--objects", type=int, default=1, help="objects per sequence (default 1)")
    p.add_argument("--size", default="240x320", help="frame size HxW (default 240x320)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from edgedino.runtime.preprocess import parse_imgsz

    config = SynthConfig(frames=a.frames, size=parse_imgsz(a.size), objects=a.objects, seed=a.seed)
    names = write_dataset(a.out, a.count, config)
    print(f"wrote {len(names)} sequences to {a.out}: {', '.join(names)}")


if __name__ == "__main__":
    main()
