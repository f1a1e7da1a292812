"""Processes launched by torchrun: init from its environment, DDP wrapping, collectives that no-op alone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init() -> Dist:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); one process without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    if world == 1:
        return Dist(device=device)
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=timedelta(minutes=30))
    return Dist(torch_dist.get_rank(), torch_dist.get_world_size(), local, device)


def wrap(module: nn.Module, d: Dist) -> nn.Module:
    """DDP around the student when several processes train (gradients averaged across them)."""
    if not d.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.local_rank] if d.device.startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


def all_reduce_mean(values: dict[str, float], d: Dist) -> dict[str, float]:
    """The mean over processes of each scalar (for logging)."""
    if not d.active or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=d.device)
    torch_dist.all_reduce(t)
    return dict(zip(values, (t / d.world).tolist(), strict=True))


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of a tensor over processes (in place when distributed; the tensor itself alone)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.all_reduce(t)
    return t


def shutdown(d: Dist) -> None:
    if d.active and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
