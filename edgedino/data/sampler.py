"""The sample stream: weighted mixing of sources, reshuffled every epoch, a pure function of (seed, position)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from edgedino.data.dataset import Draw


class MixedSampler(Sampler):
    """An endless, deterministic stream of Draws for one process.

    An epoch holds round(weight * size) draws of each source (items repeated or subsampled), shuffled with
    (seed, epoch). Global position g is split across processes in blocks of `batch_size`: process r draws
    g = (p // B) * B * world + r * B + p % B at its p-th draw, so the processes' batches, concatenated in rank
    order, are exactly the batch one process with world * B would draw. Starting at `start` gives the same
    stream as drawing `start` samples and throwing them away.
    """

    def __init__(self, sizes: list[int], weights: list[float], seed: int, rank: int = 0, world_size: int = 1,
                 start: int = 0, batch_size: int = 1):
        if len(sizes) != len(weights) or not sizes or min(sizes) < 1:
            raise ValueError(f"every source needs at least one item: sizes {sizes}, weights {weights}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of {world_size}")
        self.sizes, self.seed = list(sizes), seed
        self.counts = [max(1, round(w * n)) for n, w in zip(sizes, weights, strict=True)]
        self.offsets = np.cumsum([0] + self.sizes[:-1])
        self.epoch_length = sum(self.counts)
        self.rank, self.world, self.start, self.batch = rank, world_size, start, batch_size
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch(self, e: int) -> np.ndarray:
        """Global item indices of epoch `e`, in drawing order."""
        if self._cache is None or self._cache[0] != e:
            rng = np.random.default_rng([self.seed, e, 1])
            parts = []
            for n, count, offset in zip(self.sizes, self.counts, self.offsets, strict=True):
                full, rest = divmod(count, n)
                picks = [rng.permutation(n) for _ in range(full)] + [rng.choice(n, rest, replace=False)]
                parts.append(offset + np.concatenate(picks))
            self._cache = (e, rng.permutation(np.concatenate(parts)))
        return self._cache[1]

    def global_position(self, p: int) -> int:
        """Where in the global stream this process's p-th draw falls."""
        return (p // self.batch) * self.batch * self.world + self.rank * self.batch + p % self.batch

    def draw(self, p: int) -> Draw:
        """This process's p-th draw."""
        g = self.global_position(p)
        e, offset = divmod(g, self.epoch_length)
        return Draw(int(self.epoch(e)[offset]), g, self.seed, g // (self.batch * self.world))

    def __iter__(self) -> Iterator[Draw]:
        p = self.start
        while True:
            yield self.draw(p)
            p += 1
