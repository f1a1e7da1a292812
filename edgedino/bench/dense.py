"""Dense quality: patch correspondences under known homographies, scored by mutual nearest neighbours.

Each shipped photo is warped by a seeded random homography (rotation up to 15 degrees, scale 0.85-1.15,
a little perspective and shift). A patch of the original matches the warped image's patch with the most
similar feature, kept only when the match is mutual; it is correct when it lands within one patch of where
the homography puts it. A quantized artifact can keep a high cosine yet lose these matches.
"""

from __future__ import annotations

import numpy as np

PAIRS = 4


def homography(size_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A mild random homography about the image centre, in pixel coordinates."""
    h, w = size_hw
    angle = np.deg2rad(rng.uniform(-15, 15))
    scale = rng.uniform(0.85, 1.15)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    centre = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
    rot = np.array([[c, -s, rng.uniform(-0.05, 0.05) * w], [s, c, rng.uniform(-0.05, 0.05) * h],
                    [rng.uniform(-1e-4, 1e-4), rng.uniform(-1e-4, 1e-4), 1]])
    return centre @ rot @ np.linalg.inv(centre)


def pairs(frames: list[np.ndarray], size_hw: tuple[int, int], seed: int = 0):
    """(original, warped, H) triples of RGB images at size_hw, from the first PAIRS frames."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size_hw
    out = []
    for frame in frames[:PAIRS]:
        img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        H = homography(size_hw, rng)
        out.append((img, cv2.warpPerspective(img, H, (w, h), borderMode=cv2.BORDER_REFLECT), H))
    return out


def correspondence_accuracy(fa: np.ndarray, fb: np.ndarray, H: np.ndarray, stride: int) -> float:
    """% of original patches (whose true location is inside the warped image) matched within one patch."""
    gh, gw, d = fa.shape
    a = fa.reshape(-1, d) / np.linalg.norm(fa.reshape(-1, d), axis=1, keepdims=True).clip(1e-12)
    b = fb.reshape(-1, d) / np.linalg.norm(fb.reshape(-1, d), axis=1, keepdims=True).clip(1e-12)
    sim = a @ b.T
    ab, ba = sim.argmax(1), sim.argmax(0)
    mutual = ba[ab] == np.arange(len(a))
    ys, xs = np.mgrid[0:gh, 0:gw]
    centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride, np.ones(gh * gw)])
    warped = H @ centres
    tx, ty = warped[0] / warped[2] / stride - 0.5, warped[1] / warped[2] / stride - 0.5
    inside = (tx >= 0) & (tx <= gw - 1) & (ty >= 0) & (ty <= gh - 1)
    mx, my = ab % gw, ab // gw
    correct = mutual & (np.abs(mx - tx) <= 1) & (np.abs(my - ty) <= 1)
    return float(100.0 * correct[inside].mean()) if inside.any() else 0.0
