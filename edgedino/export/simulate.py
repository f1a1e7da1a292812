"""Quantization simulated in PyTorch, layer by layer: what int8 (or 4-bit palettized weights) does to chosen layers.

It is the one model of quantization error every target shares, cheap enough to try each layer alone: per-tensor
8-bit activations over their calibrated range and per-output-channel symmetric 8-bit weights (int8), or a
16-entry k-means table per weight tensor (palettize4). A target's Int8Scheme says what differs: whether the
layer's output is 8-bit too (TFLite, Core ML, ONNX), whether activations are symmetric (Core ML), 7-bit weights
(ONNX, OpenVINO), and whether the converter folds the LayerNorm before a layer into its weights (TFLite: the layer then
sees the bare normalised input n = (y - b) / g and weights W * g). Other details (ONNX and OpenVINO also quantize
attention's matmuls) are not simulated: the artifact's own parity decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from edgedino.export.observe import LayerStats, TensorStats, channel_axis, hooks
from edgedino.export.target import Int8Scheme

LEVELS = 255  # 8-bit activations
PALETTE = 16  # palettize4: 2^4 entries


def fake_activation(x: Tensor, lo: float, hi: float, symmetric: bool = False) -> Tensor:
    """x through 8-bit quantization over its calibrated range: asymmetric over [lo, hi] (widened to hold 0, as
    quantizers do), or symmetric over [-max|x|, max|x|]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        lo, hi = -max(-lo, hi), max(-lo, hi)
    scale = max(hi - lo, 1e-12) / LEVELS
    zero = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, LEVELS) - zero) * scale


def fake_weight_int8(w: Tensor, bits: int = 8) -> Tensor:
    """Per-output-channel symmetric weights of `bits` bits."""
    top = 2 ** (bits - 1) - 1
    scale = w.abs().reshape(w.shape[0], -1).amax(1).clamp_min(1e-12) / top
    scale = scale.reshape(-1, *([1] * (w.ndim - 1)))
    return torch.round(w / scale).clamp(-top, top) * scale


def fake_weight_palette(w: Tensor, iterations: int = 12) -> Tensor:
    """Every weight replaced by the nearest of 16 values found by 1-D k-means (Lloyd), as 4-bit palettization does."""
    flat = w.detach().flatten().double().numpy()
    centers = np.quantile(flat, (np.arange(PALETTE) + 0.5) / PALETTE)
    for _ in range(iterations):
        index = np.searchsorted((centers[1:] + centers[:-1]) / 2, flat)
        counts = np.bincount(index, minlength=PALETTE)
        sums = np.bincount(index, flat, minlength=PALETTE)
        centers = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
    index = np.searchsorted((centers[1:] + centers[:-1]) / 2, flat).reshape(w.shape)
    return torch.from_numpy(centers[index]).to(w.dtype)


def _gain(norm: nn.Module, weight: Tensor) -> Tensor:
    """A norm's gain (sign kept, kept away from 0) laid along a weight's input axis."""
    g = norm.weight.detach()
    g = torch.where(g < 0, g.clamp(max=-1e-8), g.clamp(min=1e-8))
    return g.reshape(1, -1, *([1] * (weight.ndim - 2)))


def folded_range(stats: TensorStats, norm: nn.Module) -> tuple[float, float]:
    """The calibrated range of n = (y - b) / g, the input a layer sees once the converter folded its norm in."""
    g = _gain(norm, stats.channel_lo[None]).flatten()
    ends = torch.stack([(stats.channel_lo - norm.bias.detach()) / g, (stats.channel_hi - norm.bias.detach()) / g])
    return float(ends.min()), float(ends.max())


@contextmanager
def simulated(layers: dict[str, nn.Module], names: Iterable[str], precision: str,
              stats: dict[str, LayerStats] | None = None, scheme: Int8Scheme | None = None,
              norms: dict[str, nn.Module] | None = None) -> Iterator[None]:
    """Inside the block the named layers compute as `precision` (int8 or palettize4) would on a target with this
    int8 scheme; weights are restored after. int8 needs the layers' calibrated statistics, and for a scheme that
    folds norms, `norms`: the LayerNorm feeding each layer that has one."""
    names, scheme = list(names), scheme or Int8Scheme()
    folded = {n: norms[n] for n in names if scheme.norm_folded and norms and n in norms}
    saved = {n: layers[n].weight.data.clone() for n in names}
    for n in names:
        w = saved[n]
        if precision == "palettize4":
            layers[n].weight.data = fake_weight_palette(w)
        elif n in folded:
            g = _gain(folded[n], w)
            layers[n].weight.data = fake_weight_int8(w * g, scheme.weight_bits) / g
        else:
            layers[n].weight.data = fake_weight_int8(w, scheme.weight_bits)

    def input_hook(name: str, layer: nn.Module, x: Tensor) -> Tensor:
        if name not in folded:
            return fake_activation(x, stats[name].input.lo, stats[name].input.hi, scheme.symmetric)
        norm, (lo, hi) = folded[name], folded_range(stats[name].input, folded[name])
        shape = [1] * x.ndim
        shape[channel_axis(layer)] = -1
        g, b = norm.weight.detach().reshape(shape), norm.bias.detach().reshape(shape)
        return g * fake_activation((x - b) / g, lo, hi, scheme.symmetric) + b

    def output_hook(name: str, layer: nn.Module, x: Tensor) -> Tensor:
        return fake_activation(x, stats[name].output.lo, stats[name].output.hi, scheme.symmetric)

    try:
        if precision == "int8":
            chosen = {n: layers[n] for n in names}
            with hooks(chosen, input_hook, output_hook if scheme.outputs else None):
                yield
        else:
            yield
    finally:
        for n, w in saved.items():
            layers[n].weight.data = w
