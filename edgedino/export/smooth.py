"""SmoothQuant in the deploy form: per-channel scales moved out of a LayerNorm's output into the layers it feeds.

A LayerNorm y = g * n + b that feeds z = W y + c: with g / s, b / s and W's input columns times s, z is the same
in exact arithmetic, so every converter inherits the change and the fp32 artifact still matches PyTorch. With
s_j = max|y_j|^alpha / max|W[:, j]|^(1 - alpha) (Xiao et al. 2023) the channels of y that per-tensor int8 would
quantize together come out even, and the outliers' difficulty moves into the weights, which every target
quantizes per output channel. The pairs come from the backbone (`norm_consumers`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from edgedino.export.observe import observe, quantizable_layers

ALPHA = 0.5  # migration strength: 0 leaves the activations alone, 1 moves all of their range into the weights
LIMIT = 1e4  # scales are clamped to [1 / LIMIT, LIMIT]
CALIB_BATCH = 8


def _along_inputs(s: Tensor, weight: Tensor) -> Tensor:
    """A per-input-channel vector shaped to broadcast over a linear ([out, in]) or conv ([out, in, kh, kw]) weight."""
    return s.reshape(1, -1, *([1] * (weight.ndim - 2)))


def _input_absmax(weight: Tensor) -> Tensor:
    return weight.detach().abs().movedim(1, 0).reshape(weight.shape[1], -1).amax(1)


@torch.no_grad()
def smoothing_scales(module: nn.Module, calib: np.ndarray, alpha: float = ALPHA) -> dict[str, Tensor]:
    """{norm name: per-channel scale} for every LayerNorm -> linear pair of `module` (an ExportModule), from the
    channel maxima its calibration inputs reach."""
    layers = quantizable_layers(module)
    batches = [torch.from_numpy(np.ascontiguousarray(calib[i:i + CALIB_BATCH]))
               for i in range(0, len(calib), CALIB_BATCH)]
    stats = observe(module, layers, batches)
    scales = {}
    for norm, consumers in module.backbone.norm_consumers():
        act = stats[consumers[0]].input.channel_absmax.clamp_min(1e-6)
        weight = torch.stack([_input_absmax(layers[c].weight) for c in consumers]).amax(0).clamp_min(1e-6)
        scales[norm] = (act ** alpha / weight ** (1 - alpha)).clamp(1 / LIMIT, LIMIT)
    return scales


@torch.no_grad()
def apply_smoothing(module: nn.Module, scales: dict[str, Tensor]) -> None:
    """Divide each norm's gain and bias by its scales and multiply the input columns of the layers it feeds."""
    named = dict(module.backbone.named_modules())
    for norm, consumers in module.backbone.norm_consumers():
        s = scales[norm]
        named[norm].weight.div_(s)
        named[norm].bias.div_(s)
        for name in consumers:
            named[name].weight.mul_(_along_inputs(s, named[name].weight))
