"""Sharded training checkpoints of FSDP2 runs: a torch.distributed.checkpoint (DCP) folder that every process
writes its own shards into, laid out as an official DINOv3 run saves one (`model.student.*`, `model.teacher.*`,
`optimizer.*`), so `edgedino.load_backbone` reads its teacher as it reads theirs. edgedino.json beside the shards
holds the step, the config and the module names. The folder is written as checkpoint.dcp.tmp and renamed into
place once every process has finished, so a run killed mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn

from edgedino.errors import CheckpointError
from edgedino.train import distributed

DIR = "checkpoint.dcp"
INFO = "edgedino.json"
FORMAT = "edgedino-train-sharded"


def _tree(modules: dict[str, nn.Module]) -> nn.Module:
    """One module holding `modules` under their dotted names ("student.vits16" -> student -> vits16)."""
    root = nn.Module()
    for name, module in modules.items():
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, nn.Module())
            node = getattr(node, part)
        node.add_module(leaf, module)
    return root


def folder(path: str | Path) -> Path | None:
    """The sharded checkpoint of a run folder (or the folder itself); the previous one if a save was cut short
    between its two renames; None when there is none."""
    path = Path(path)
    for candidate in (path, path / DIR, path / f"{DIR}.old"):
        if (candidate / INFO).is_file():
            return candidate
    return None


def read_info(path: str | Path) -> dict:
    """{"format", "step", "config", "modules"} of a sharded checkpoint."""
    found = folder(path)
    if found is None:
        raise CheckpointError(f"no sharded training checkpoint at {path} (nothing to resume)")
    return json.loads((found / INFO).read_text())


def save(out: Path, step: int, config: dict, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
         d: distributed.Dist) -> Path:
    """Every process writes its shards of `modules` and the optimizer; the main process swaps the folder in."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    out = Path(out)
    tmp, final, old = out / f"{DIR}.tmp", out / DIR, out / f"{DIR}.old"
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
    _barrier(d)
    model = _tree(modules)
    dcp.save({"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)},
             checkpoint_id=tmp)
    _barrier(d)
    if d.main:
        info = {"format": FORMAT, "step": step, "config": config, "modules": list(modules)}
        (tmp / INFO).write_text(json.dumps(info))
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    _barrier(d)
    return final


def load(path: str | Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None,
         optional: tuple[str, ...] = ()) -> tuple[int, set[str]]:
    """Load the modules the checkpoint holds (a module in `optional` may be absent) and the optimizer, into
    models sharded any way (or not at all); returns (steps done, the names loaded)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    info = read_info(path)
    missing = [k for k in modules if k not in info["modules"] and k not in optional]
    if missing:
        raise CheckpointError(f"the checkpoint has no {missing[0]!r} (it has {', '.join(info['modules'])})")
    present = {k: m for k, m in modules.items() if k in info["modules"]}
    model = _tree(present)
    state = {"model": get_model_state_dict(model)}
    if optimizer is not None:
        state["optimizer"] = get_optimizer_state_dict(model, optimizer)
    dcp.load(state, checkpoint_id=folder(path), planner=DefaultLoadPlanner(allow_partial_load=True))
    set_model_state_dict(model, state["model"])
    if optimizer is not None:
        set_optimizer_state_dict(model, optimizer, state["optimizer"])
    return int(info["step"]), set(present)


def _barrier(d: distributed.Dist) -> None:
    if d.active:
        torch.distributed.barrier()
