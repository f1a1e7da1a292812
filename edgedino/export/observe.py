"""The layers int8 quantizes (linear and convolution), and statistics of what enters and leaves each of them.

One observer serves SmoothQuant (per-channel maxima of inputs), the int8 simulation (per-tensor ranges of inputs
and outputs) and the stress weights' report (max / median, the outlier statistic), so all read the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

QUANTIZABLE = (nn.Linear, nn.Conv2d)


def quantizable_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The linear and convolution layers of a backbone (or of an ExportModule's backbone), by backbone-relative
    name in execution order; a task head is left out (it stays float on every target)."""
    root = getattr(module, "backbone", module)
    return {name: m for name, m in root.named_modules() if isinstance(m, QUANTIZABLE)}


def is_depthwise(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Conv2d) and layer.groups > 1 and layer.groups == layer.in_channels


def channel_axis(layer: nn.Module) -> int:
    """The axis of the layer's input that holds its input channels."""
    return 1 if isinstance(layer, nn.Conv2d) else -1


@dataclass
class TensorStats:
    """One layer's input (or output) over the observed samples."""

    lo: float  # smallest value
    hi: float  # largest value
    channel_lo: Tensor  # (C,) smallest value per channel
    channel_hi: Tensor  # (C,) largest value per channel
    median_abs: float = 0.0  # median over samples of each sample's median |x|
    samples: int = 0

    @classmethod
    def empty(cls, channels: int) -> TensorStats:
        return cls(float("inf"), float("-inf"), torch.full((channels,), float("inf")),
                   torch.full((channels,), float("-inf")))

    @property
    def channel_absmax(self) -> Tensor:
        """(C,) largest |x| per channel."""
        return torch.maximum(-self.channel_lo, self.channel_hi)

    @property
    def outlier_ratio(self) -> float:
        """max |x| / median |x|: how far the largest values stand out (the quantity per-tensor int8 suffers from)."""
        return max(-self.lo, self.hi) / max(self.median_abs, 1e-12)

    def add(self, x: Tensor, axis: int) -> None:
        x = x.detach().float()
        rows = x.movedim(axis, -1).reshape(-1, x.shape[axis])
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        self.channel_lo = torch.minimum(self.channel_lo, rows.amin(0))
        self.channel_hi = torch.maximum(self.channel_hi, rows.amax(0))
        n = self.samples
        self.median_abs = (self.median_abs * n + float(x.abs().median())) / (n + 1)
        self.samples = n + 1


@dataclass
class LayerStats:
    input: TensorStats
    output: TensorStats


Hook = Callable[[str, nn.Module, Tensor], Tensor | None]


@contextmanager
def hooks(layers: dict[str, nn.Module], before: Hook | None = None, after: Hook | None = None) -> Iterator[None]:
    """before(name, layer, input) runs before each layer and after(name, layer, output) after it; a tensor either
    returns replaces the input or output."""

    def pre(name):
        def run(layer, args):
            out = before(name, layer, args[0])
            return None if out is None else (out, *args[1:])
        return run

    def post(name):
        return lambda layer, args, output: after(name, layer, output)

    handles = [layer.register_forward_pre_hook(pre(name)) for name, layer in layers.items() if before]
    handles += [layer.register_forward_hook(post(name)) for name, layer in layers.items() if after]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def observe(run: Callable[[Tensor], object], layers: dict[str, nn.Module], batches: Iterable[Tensor]
            ) -> dict[str, LayerStats]:
    """Statistics of every layer's input and output while `run` processes each batch."""
    stats: dict[str, dict[str, TensorStats]] = {}

    def record(where: str):
        def add(name: str, layer: nn.Module, x: Tensor) -> None:
            axis = channel_axis(layer)
            seen = stats.setdefault(name, {})
            if where not in seen:
                seen[where] = TensorStats.empty(x.shape[axis])
            seen[where].add(x, axis)
        return add

    with hooks(layers, record("input"), record("output")):
        for batch in batches:
            run(batch)
    return {name: LayerStats(s["input"], s["output"]) for name, s in stats.items()}
