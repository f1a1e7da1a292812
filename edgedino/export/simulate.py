"""Quantization simulated in PyTorch, layer by layer: what int8 (or 4-bit palettized weights) does to chosen layers.

It is the one model of quantization error every target shares, cheap enough to try each layer alone: per-tensor
8-bit activations over their calibrated range and per-output-channel symmetric 8-bit weights (int8), or a
16-entry k-means table per weight tensor (palettize4). A target's Int8Scheme says what differs: whether the
layer's output is 8-bit too (TFLite, Core ML) and whether activations are symmetric (Core ML). Other details
(ONNX and OpenVINO also quantize attention's matmuls) are not simulated: the artifact's own parity decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from edgedino.export.observe import LayerStats, TensorStats, hooks
from edgedino.export.target import Int8Scheme

LEVELS = 255  # 8-bit activations
WEIGHT_MAX = 127  # symmetric 8-bit weights
PALETTE = 16  # palettize4: 2^4 entries


def fake_activation(x: Tensor, stats: TensorStats, symmetric: bool = False) -> Tensor:
    """x through 8-bit quantization over its calibrated range: asymmetric over [lo, hi] (widened to hold 0, as
    quantizers do), or symmetric over [-max|x|, max|x|]."""
    lo, hi = min(stats.lo, 0.0), max(stats.hi, 0.0)
    if symmetric:
        lo, hi = -max(-lo, hi), max(-lo, hi)
    scale = max(hi - lo, 1e-12) / LEVELS
    zero = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, LEVELS) - zero) * scale


def fake_weight_int8(w: Tensor) -> Tensor:
    """Per-output-channel symmetric 8-bit weights."""
    scale = w.abs().reshape(w.shape[0], -1).amax(1).clamp_min(1e-12) / WEIGHT_MAX
    scale = scale.reshape(-1, *([1] * (w.ndim - 1)))
    return torch.round(w / scale).clamp(-WEIGHT_MAX, WEIGHT_MAX) * scale


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


@contextmanager
def simulated(layers: dict[str, nn.Module], names: Iterable[str], precision: str,
              stats: dict[str, LayerStats] | None = None, scheme: Int8Scheme | None = None) -> Iterator[None]:
    """Inside the block the named layers compute as `precision` (int8 or palettize4) would on a target with this
    int8 scheme; weights are restored after. int8 needs the layers' calibrated statistics."""
    names, scheme = list(names), scheme or Int8Scheme()
    saved = {n: layers[n].weight.data.clone() for n in names}
    quantize_weight = fake_weight_palette if precision == "palettize4" else fake_weight_int8
    for n in names:
        layers[n].weight.data = quantize_weight(saved[n])

    def activation(where: str):
        return lambda name, layer, x: fake_activation(x, getattr(stats[name], where), scheme.symmetric)

    try:
        if precision == "int8":
            chosen = {n: layers[n] for n in names}
            with hooks(chosen, activation("input"), activation("output") if scheme.outputs else None):
                yield
        else:
            yield
    finally:
        for n, w in saved.items():
            layers[n].weight.data = w
