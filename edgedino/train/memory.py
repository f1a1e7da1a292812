"""Will a training step fit in memory? Measured before the first step, so that a batch too large for the machine is
refused with one line naming one that fits, instead of the kernel's OOM killer ending the run without a word.

Two real steps (forward and backward, no optimizer update) on synthetic images, 2 and 4 per process, are run
while every tensor the step allocates is counted until it is freed: the peak grows linearly with the batch, so the
two peaks give the cost of the step's fixed part and of each image. AdamW's two moments (allocated at the first
update) and the batches the loader holds in flight are added from their sizes. The process itself grows more than
its tensors (the allocator keeps freed blocks, libraries keep buffers): its peak RSS rose by 1.2-1.4x the counted
bytes in benchmarks/train_memory_estimate.py, so the estimate is the count times OVERHEAD.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from edgedino.errors import ConfigError

GB = 1e9
PREFETCH = 2  # batches each loader worker prepares ahead (torch's DataLoader default)
HEADROOM = 0.9  # share of the available memory a step may plan to use
OVERHEAD = 1.4  # peak RSS growth over counted tensor bytes (measured: 1.2-1.4, benchmarks/train_memory_estimate.py)


def _storages(tree) -> dict[int, torch.UntypedStorage]:
    return {t.untyped_storage().data_ptr(): t.untyped_storage() for t in tree_leaves(tree)
            if isinstance(t, torch.Tensor) and t.layout == torch.strided}


class PeakBytes(TorchDispatchMode):
    """Counts the bytes of every tensor storage allocated inside the mode until Python frees it; keeps the peak.
    An output that shares an input's storage (a view, an in-place result, a weight's transpose) allocates nothing."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, weakref.ref] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = _storages((args, kwargs))
        out = func(*args, **kwargs)
        for key, storage in _storages(out).items():
            if key not in inputs:
                self._add(storage)
        return out

    def _add(self, storage) -> None:
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self._refs:
            return
        self.live += size
        self.peak = max(self.peak, self.live)
        self._refs[key] = weakref.ref(storage, lambda _, k=key, n=size: self._free(k, n))

    def _free(self, key: int, size: int) -> None:
        self._refs.pop(key, None)
        self.live -= size


@dataclass
class Estimate:
    """Bytes a training step needs beyond what is already allocated, for `images` images in this process."""

    fixed: int  # gradients, the step's batch-independent tensors and AdamW's moments
    per_image: int  # activations kept for backward and the loader's batches in flight, per image

    def at(self, images: int) -> int:
        return self.fixed + self.per_image * images

    def fitting(self, budget: float) -> int:
        """The most images per process that fit in `budget` bytes (0 when none does)."""
        return max(int((budget - self.fixed) // max(self.per_image, 1)), 0)


def synthetic_batch(transform, images: int) -> dict[str, torch.Tensor]:
    """The crops of `images` random 96x96 images, stacked as the loader stacks them."""
    rng = np.random.default_rng(0)
    samples = [transform(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), rng) for _ in range(images)]
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def step_peak(step_fn, batch: dict, sched, amp: str, device: str) -> int:
    """Peak bytes allocated by one forward and backward of `step_fn` on `batch` (gradients dropped after)."""
    from edgedino.train.loop import autocast

    params = [p for g in step_fn.param_groups() for p in g["params"]]
    with PeakBytes() as counter:
        with autocast(amp, device):
            loss = step_fn.loss(batch, 0, sched)["loss"]
        loss.backward()
        del loss
    for p in params:
        p.grad = None
    return counter.peak


def estimate(step_fn, transform, sched, amp: str, device: str, workers: int) -> Estimate:
    """What a step costs: measured at 2 and 4 images per process, plus AdamW's moments and in-flight batches."""
    small, large = (step_peak(step_fn, synthetic_batch(transform, n), sched, amp, device) for n in (2, 4))
    per_image = max((large - small) // 2, 0)
    sample = synthetic_batch(transform, 1)
    in_flight = sum(t.nbytes for t in sample.values()) * (1 + PREFETCH * workers)
    moments = 2 * sum(p.numel() * 4 for g in step_fn.param_groups() for p in g["params"] if p.requires_grad)
    fixed = max(small - 2 * per_image, 0) + moments
    return Estimate(int(fixed * OVERHEAD), int((per_image + in_flight) * OVERHEAD))


def available(device: str) -> int | None:
    """Bytes this process can still allocate: free GPU memory, or the system's (and its cgroup's) available RAM;
    None where the system does not say (no /proc/meminfo: not Linux)."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if not Path("/proc/meminfo").exists():
        return None
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    free = int(meminfo["MemAvailable"].split()[0]) * 1024
    limit, used = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    if limit.exists() and used.exists() and limit.read_text().strip() != "max":
        free = min(free, int(limit.read_text()) - int(used.read_text()))
    return free


def check_fits(est: Estimate, batch: int, world: int, budget: float, where: str) -> None:
    """A ConfigError naming a global batch that fits when `batch` (split over `world` processes) does not."""
    need = est.at(batch // world)
    if need <= budget * HEADROOM:
        return
    fits = est.fitting(budget * HEADROOM)
    if fits < 1:
        raise ConfigError(f"a training step needs about {est.fixed / GB:.1f} GB before any image, but {where} "
                          f"{budget / GB:.1f} GB: use a smaller model or a machine with more memory")
    suggest = world * 2 ** int(np.log2(fits))
    raise ConfigError(f"a training step at run.batch={batch} needs about {need / GB:.1f} GB more memory, but {where} "
                      f"{budget / GB:.1f} GB: run.batch={suggest} fits (or spread the batch over more processes "
                      "with torchrun)")


def check_memory(step_fn, cfg, transform, sched, d) -> None:
    """Refuse a run whose step would not fit: in run.memory_gb when set, else in what this process can allocate
    (on a CPU machine shared by the processes torchrun started on it). Every process refuses when one does."""
    import os

    from edgedino.train import distributed

    free = None if cfg.run.memory_gb else available(d.device)
    if not cfg.run.memory_gb and free is None:
        return  # nothing to compare with: set run.memory_gb to have the step checked
    est = estimate(step_fn, transform, sched, cfg.run.amp, d.device, cfg.data.workers)
    if cfg.run.memory_gb:
        budget, where = cfg.run.memory_gb * GB, "run.memory_gb allows"
    else:
        share = 1 if d.device.startswith("cuda") else int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        budget, where = free / share, "this process has"
    fits = est.at(cfg.run.batch // d.world) <= budget * HEADROOM
    if distributed.all_reduce_mean({"fits": float(fits)}, d)["fits"] < 1:
        check_fits(est, cfg.run.batch, d.world, budget, where)
        raise ConfigError(f"a training step at run.batch={cfg.run.batch} does not fit in memory on another process")
