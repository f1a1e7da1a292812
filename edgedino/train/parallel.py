"""How the models of a run are spread over its processes: DDP (every process holds everything; small models) or
FSDP2 (torch.distributed.fsdp.fully_shard: parameters, gradients and Adam state sharded, bf16 parameters with
fp32 gradient reductions on CUDA), with activation checkpointing, and weight copies that work on either."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from edgedino.models import Backbone
from edgedino.train import distributed

PARALLEL = ("ddp", "fsdp")


def blocks(module: nn.Module) -> list[nn.Module]:
    """The transformer / ConvNeXt blocks inside `module` (the units FSDP shards and checkpointing recomputes)."""
    return [m for m in module.modules() if hasattr(m, "checkpointing")]


def enable_checkpointing(module: nn.Module) -> None:
    """Recompute every block's activations in the backward pass (memory for compute, the same gradients)."""
    for block in blocks(module):
        block.checkpointing = True


def _policy(amp: str, device: str):
    from torch.distributed.fsdp import MixedPrecisionPolicy

    from edgedino.train.loop import uses_bf16

    bf16 = uses_bf16(amp, device)
    return MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)


def shard(model: nn.Module, d: distributed.Dist, amp: str) -> None:
    """FSDP2 over every process: each block, each backbone (its forward_features too), then each other part
    holding parameters (heads, projections) on its own, so that any of them can be called directly."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    mesh = init_device_mesh(d.device.split(":")[0], (d.world,))
    # every unit, roots included, gives its parameters back after forward (as the official code sets it; a root
    # would otherwise keep them gathered, and a frozen model has no backward to release them)
    kw = {"mesh": mesh, "mp_policy": _policy(amp, d.device), "reshard_after_forward": True}
    backbones = [model] if isinstance(model, Backbone) else [m for m in model.modules() if isinstance(m, Backbone)]
    for backbone in backbones:
        for block in blocks(backbone):
            fully_shard(block, **kw)
        fully_shard(backbone, **kw)
        register_fsdp_forward_method(backbone, "forward_features")
    inside = {id(p) for b in backbones for p in b.parameters()}
    _shard_rest(model, inside, lambda m: fully_shard(m, **kw))


def _shard_rest(module: nn.Module, inside: set[int], apply) -> None:
    """Shard the largest parts below `module` that hold parameters outside the (already sharded) backbones."""
    for child in module.children():
        params = list(child.parameters())
        if isinstance(child, Backbone) or not params:
            continue
        if any(id(p) in inside for p in params):
            _shard_rest(child, inside, apply)
        else:
            apply(child)


def prepare(model: nn.Module, d: distributed.Dist, run, trained: bool) -> nn.Module:
    """Ready `model` for this run's processes; returns what to call for a trained model (its DDP wrapper, or the
    model itself: sharded in place under FSDP). Frozen models are sharded too under FSDP, left whole under DDP."""
    if run.activation_checkpointing and trained:
        enable_checkpointing(model)
    if not d.active:
        return model
    if run.parallel == "fsdp":
        warnings.filterwarnings("ignore", message=".*returned a view tensor.*")
        shard(model, d, run.amp)
        return model
    return distributed.wrap(model, d) if trained else model


def is_sharded(t: torch.Tensor) -> bool:
    return hasattr(t, "full_tensor")


@torch.no_grad()
def copy_weights(dst: nn.Module, src: nn.Module) -> None:
    """dst's parameters and buffers <- src's of the same name (both whole, or both sharded alike)."""
    src_state = dict(src.named_parameters()) | dict(src.named_buffers())
    for name, t in list(dst.named_parameters()) + list(dst.named_buffers()):
        t.copy_(src_state[name])


def full_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """module's state dict as whole CPU tensors (gathers shards: every process must call it)."""
    return {k: (v.full_tensor() if is_sharded(v) else v).detach().cpu() for k, v in module.state_dict().items()}
