"""Training checkpoints: everything a run needs to continue exactly, written atomically.

Modules are stored at the top level by name ("student", "teacher", ...) with the official DINOv3 key layout
("backbone.", "dino_head.", "ibot_head."), so `edgedino.load_backbone(checkpoint.pth)` reads the teacher as it is.
Randomness is reseeded from (seed, step, rank) at every step and the data stream is a pure function of
(seed, sample index), so the step count is the whole data position and RNG state: nothing else to restore.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from edgedino.atomic import atomic_path
from edgedino.checkpoints import save_backbone
from edgedino.errors import CheckpointError, RunError
from edgedino.models import Backbone
from edgedino.readers import torch_load

FORMAT = "edgedino-train"
NAME = "checkpoint.pth"


def save_checkpoint(out: Path, step: int, config: dict, modules: dict[str, nn.Module],
                    optimizer: torch.optim.Optimizer, extra: dict | None = None) -> Path:
    """Write out/checkpoint.pth for a run that has finished `step` steps (temp file, then rename)."""
    state = {
        "format": FORMAT,
        "step": step,
        "config": config,
        "modules": list(modules),
        "optimizer": optimizer.state_dict(),
        "extra": extra or {},
    }
    state.update({k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()})
    path = Path(out) / NAME
    need, free = _nbytes(state), shutil.disk_usage(path.parent).free
    if need > free:  # torch.save would fail mid-way with a message that does not say why
        raise RunError(f"cannot write {path}: it needs {need / 1e6:.0f} MB and its disk has {free / 1e6:.0f} MB free "
                       "(no space left on device)")
    with torch_write(path), atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


@contextmanager
def torch_write(path: Path) -> Iterator[None]:
    """torch.save's failed writes (a full disk, a file size limit) as a RunError naming `path`: its stream reports
    them as a RuntimeError such as "basic_ios::clear: iostream error" or "unexpected pos"."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        free = shutil.disk_usage(Path(path).parent).free / 1e6
        raise RunError(f"cannot write {path}: the write failed with {free:.0f} MB free on its disk "
                       f"({' '.join(str(e).split())[:120]})") from None


def _nbytes(obj) -> int:
    """Bytes of the tensors in a nested dict/list."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    return sum(_nbytes(v) for v in items)


def require_finite(module: nn.Module, what: str) -> None:
    """A CheckpointError naming the first weight of `module` that holds NaN or inf (a diverged run's weights)."""
    for name, t in module.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{what} has non-finite weights (NaN or inf), e.g. {name}: it cannot be trained "
                                  "from (a diverged run?)")


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint's contents (tensors only, weights_only=True)."""
    path = Path(path)
    if path.is_dir():
        path = path / NAME
    if not path.exists():
        raise CheckpointError(f"no training checkpoint at {path} (nothing to resume)")
    state = torch_load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an edgedino training checkpoint")
    return state


def restore(state: dict, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None) -> int:
    """Load modules (and the optimizer) from a checkpoint; returns the number of steps already done."""
    for key, module in modules.items():
        if key not in state["modules"]:
            raise CheckpointError(f"the checkpoint has no {key!r} (it has {', '.join(state['modules'])})")
        module.load_state_dict(state[key])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def export_backbone(backbone: Backbone, path: str | Path) -> Path:
    """The backbone as an edgedino checkpoint that load_backbone and `edgedino export` read as it is."""
    import copy

    net = copy.deepcopy(backbone).cpu().float().eval()
    with torch_write(Path(path)):
        return save_backbone(net, path)
