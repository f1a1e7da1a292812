"""Block-wise masking for iBOT (BEiT/DINOv2 style): rectangles of patches until a target count is reached."""

from __future__ import annotations

import math

import numpy as np
import torch


class BlockMasking:
    """Masks of a (h, w) patch grid made of random rectangles (aspect 0.3-3.3, at least `min_block` patches)."""

    def __init__(self, grid_hw: tuple[int, int], min_block: int = 4, max_fraction: float = 0.5,
                 min_aspect: float = 0.3, tries: int = 10):
        self.h, self.w = grid_hw
        self.min_block = min_block
        self.max_block = max(min_block, int(max_fraction * self.h * self.w))
        self.log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
        self.tries = tries

    def _add_block(self, mask: np.ndarray, budget: int, rng: np.random.Generator) -> int:
        """Mask one rectangle adding 1..budget new patches; how many it added (0 when no try fits)."""
        for _ in range(self.tries):
            area = rng.uniform(min(self.min_block, budget), budget)
            aspect = math.exp(rng.uniform(*self.log_aspect))
            bh, bw = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if not (0 < bh < self.h and 0 < bw < self.w):
                continue
            top, left = rng.integers(0, self.h - bh + 1), rng.integers(0, self.w - bw + 1)
            window = mask[top:top + bh, left:left + bw]
            new = int(window.size - window.sum())
            if 0 < new <= budget:
                window[...] = True
                return new
        return 0

    def __call__(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """A (h, w) bool mask with exactly `count` patches masked: rectangles while they fit, then single patches
        drawn at random to top it up (as the official MaskingGenerator does)."""
        mask = np.zeros((self.h, self.w), dtype=bool)
        count = min(count, mask.size)
        done = 0
        while done < count:
            added = self._add_block(mask, min(count - done, self.max_block), rng)
            if added == 0:
                break
            done += added
        if done < count:
            mask.flat[rng.choice(np.flatnonzero(~mask), size=count - done, replace=False)] = True
        return mask


def masks_for_batch(n_images: int, grid_hw: tuple[int, int], prob: float = 0.5,
                    ratio: tuple[float, float] = (0.1, 0.5), *, rng: np.random.Generator) -> torch.Tensor:
    """(n_images, h*w) bool masks: int(prob * n) images masked, their ratios stratified over `ratio`.

    Masked image i gets exactly int(h * w * r_i) patches, r_i the upper edge of the i-th of n equal slices of
    [ratio[0], ratio[1]] (the official collate), so a batch always spans the range; which image gets which mask
    is shuffled.
    """
    h, w = grid_hw
    generator = BlockMasking(grid_hw)
    n_masked = int(n_images * prob)
    edges = np.linspace(ratio[0], ratio[1], n_masked + 1)
    masks = [generator(int(h * w * edges[i + 1]), rng) for i in range(n_masked)]
    masks += [np.zeros((h, w), dtype=bool)] * (n_images - n_masked)
    masks = [masks[i] for i in rng.permutation(n_images)]
    return torch.from_numpy(np.array(masks, dtype=bool).reshape(n_images, h * w))
