"""Batches for training: sources -> items -> decoding and crops in worker processes -> a resumable batch stream."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from torch.utils.data import BatchSampler, DataLoader

from edgedino.data.dataset import ImageDataset, Skipped, collate_skip
from edgedino.data.sampler import MixedSampler
from edgedino.data.sources import index_source, parse_sources
from edgedino.errors import EdgeDinoError


@dataclass
class DataConfig:
    """What to read: folders, videos ('clip.mp4:stride=10'), list files, each ':weight=W'; decoding processes."""

    sources: list = field(default_factory=list)
    workers: int = 2


@dataclass
class SkipCounter:
    """Unreadable items: the total, and those of each epoch not yet reported."""

    total: int = 0
    pending: dict = field(default_factory=dict)

    def add(self, epoch: int, skipped: Skipped) -> None:
        self.total += 1
        self.pending.setdefault(epoch, []).append(skipped)

    def end_epoch(self, number: int, rank: int = 0) -> str | None:
        """A one-line report of the epoch's skipped items (None when there were none)."""
        skipped = self.pending.pop(number, [])
        if not skipped:
            return None
        names = sorted({f"{s.path} ({s.reason})" for s in skipped})
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        listed = "; ".join(names[:3])
        return f"data[rank {rank}]: epoch {number}: skipped {len(skipped)} unreadable items: {listed}{more}"


def _worker_init(trainer: int, _: int) -> None:
    """One thread per decoding process (the processes are the parallelism), and an end with the trainer."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    exit_with(trainer)


def exit_with(pid: int) -> None:
    """End this process as soon as process `pid` ends, however it ends (SIGKILL, the OOM killer).

    Workers are forked from the forkserver, not from the trainer, and each holds the forkserver's keep-alive pipe:
    when a killed trainer cannot stop them, worker and server wait on each other forever (torch's own watchdog
    only watches the direct parent, the server). A thread waits on a pidfd of the trainer instead, and its exit
    lets the forkserver and the resource tracker see their pipes close and exit too.
    """
    import select
    import threading
    import time

    try:
        fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None  # Linux >= 5.3; others poll
        os.kill(pid, 0)
    except ProcessLookupError:  # the trainer is already gone
        os._exit(1)

    def wait() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(pid):
                time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=wait, name="exit-with-trainer", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _worker_context():
    """Workers forked from a clean single-threaded server, not from this process.

    Forking a process whose OpenCV or torch thread pools have run can hang the child (seen in tests: a worker
    stuck after the parent ran cv2 filters); the server imports the heavy modules once so workers start fast.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "torch", "cv2", "edgedino.data", "edgedino.train.augment"])
    return ctx


class BatchStream:
    """Endless batches; `position` (samples this process drew) and `skips` for checkpoints and the final summary."""

    def __init__(self, loader: DataLoader, sampler: MixedSampler, batch_size: int, start: int,
                 report: Callable[[str], None]):
        self.loader, self.sampler, self.batch_size = loader, sampler, batch_size
        self.position, self.skips, self.report = start, SkipCounter(), report
        self.epoch = sampler.global_position(start) // sampler.epoch_length
        self._unreadable_run = 0
        self._it = None

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict:
        if self._it is None:
            self._it = iter(self.loader)
        while True:
            batch = next(self._it)
            self.position += self.batch_size
            length = self.sampler.epoch_length
            for item in batch["skipped"]:
                self.skips.add(item.position // length if item.position >= 0 else self.epoch, item)
            epoch = self.sampler.global_position(self.position - 1) // length
            while self.epoch < epoch:
                message = self.skips.end_epoch(self.epoch, self.sampler.rank)
                if message:
                    self.report(message)
                self.epoch += 1
            kept = self.batch_size - len(batch["skipped"])
            self._unreadable_run = 0 if kept else self._unreadable_run + self.batch_size
            if kept:
                return batch
            if self._unreadable_run >= self.sampler.epoch_length * self.sampler.world:
                raise EdgeDinoError(f"no readable image in a whole epoch; e.g. {batch['skipped'][0]}")


def make_loader(cfg: DataConfig, transform, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                start_step: int = 0, report: Callable[[str], None] | None = None) -> BatchStream:
    """This process's batches of `batch_size` from step `start_step` on; decoding in `cfg.workers` processes.

    The transform must be picklable (a module-level class or function, e.g. MultiCrop): workers receive a copy.
    """
    sources = parse_sources(list(cfg.sources))
    per_source = [index_source(s) for s in sources]
    sampler = MixedSampler([len(items) for items in per_source], [s.weight for s in sources], seed, rank, world,
                           start=start_step * batch_size, batch_size=batch_size)
    dataset = ImageDataset([item for items in per_source for item in items], transform)
    loader = DataLoader(dataset, batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
                        num_workers=cfg.workers, collate_fn=collate_skip,
                        worker_init_fn=partial(_worker_init, os.getpid()), persistent_workers=cfg.workers > 0,
                        multiprocessing_context=_worker_context() if cfg.workers else None)
    return BatchStream(loader, sampler, batch_size, start_step * batch_size,
                       report or (lambda m: print(m, file=sys.stderr, flush=True)))
