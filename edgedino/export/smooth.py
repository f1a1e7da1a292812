"""SmoothQuant in the deploy form: per-channel scales moved out of a LayerNorm's output into the layers it feeds.

A LayerNorm y = g * n + b that feeds z = W y + c: with g / s, b / s and W's input columns times s, z is the same
in exact arithmetic, so every converter inherits the change and the fp32 artifact still matches PyTorch. With
s_j = max|y_j|^alpha / max|W[:, j]|^(1 - alpha) (Xiao et al. 2023) the channels of y that per-tensor int8 would
quantize together come out even, and the outliers' difficulty moves into the weights, which every target
quantizes per output channel. The pairs come from the backbone (`norm_consumers`); a norm whose output has no
channel standing out (max over median of the channel maxima below MIN_SPREAD) is left as it is, so weights
without outliers export exactly as before.

A converter that folds a norm's gain into the next layer (TFLite does: the FULLY_CONNECTED weights become W * g
and its input the bare normalised n) would undo the migration. For such a target the scale goes inside the
normalisation instead (ScaledLayerNorm): ((x - mean) / s) * rsqrt(var) * g + b / s, where the 1 / s multiplies
before the data-dependent rsqrt and cannot be folded away.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from edgedino.export.observe import observe, quantizable_layers
from edgedino.models.convnext import ChannelsFirstLayerNorm
from edgedino.models.convnext_deploy import ChannelNorm

ALPHA = 0.5  # migration strength: 0 leaves the activations alone, 1 moves all of their range into the weights
MIN_SPREAD = 8.0  # a norm output whose largest channel maximum is under 8x the median one is not migrated
LIMIT = 1e4  # scales are clamped to [1 / LIMIT, LIMIT]
CALIB_BATCH = 8


class ScaledLayerNorm(nn.Module):
    """A LayerNorm whose output is divided by per-channel scales inside the normalisation (see the module
    docstring); `channels_first` for ConvNeXt's NCHW norms, normalised over dim 1 as the deploy form's ChannelNorm
    is (no permutes)."""

    def __init__(self, norm: nn.LayerNorm, scales: Tensor, channels_first: bool):
        super().__init__()
        self.eps, self.channels_first = norm.eps, channels_first
        self.weight = nn.Parameter(norm.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(norm.bias.detach() / scales, requires_grad=False)
        self.register_buffer("inverse", 1.0 / scales)

    def forward(self, x: Tensor) -> Tensor:
        dim, shape = (1, (-1, 1, 1)) if self.channels_first else (-1, (-1,))
        centred = x - x.mean(dim, keepdim=True)
        rstd = torch.rsqrt(centred.pow(2).mean(dim, keepdim=True) + self.eps)
        return (centred * self.inverse.view(shape)) * rstd * self.weight.view(shape) + self.bias.view(shape)


def _along_inputs(s: Tensor, weight: Tensor) -> Tensor:
    """A per-input-channel vector shaped to broadcast over a linear ([out, in]) or conv ([out, in, kh, kw]) weight."""
    return s.reshape(1, -1, *([1] * (weight.ndim - 2)))


def _input_absmax(weight: Tensor) -> Tensor:
    return weight.detach().abs().movedim(1, 0).reshape(weight.shape[1], -1).amax(1)


@torch.no_grad()
def smoothing_scales(module: nn.Module, calib: np.ndarray, alpha: float = ALPHA) -> dict[str, Tensor]:
    """{norm name: per-channel scale} for every LayerNorm -> linear pair of `module` (an ExportModule) whose output
    has outlier channels, from the channel maxima its calibration inputs reach."""
    layers = quantizable_layers(module)
    batches = [torch.from_numpy(np.ascontiguousarray(calib[i:i + CALIB_BATCH]))
               for i in range(0, len(calib), CALIB_BATCH)]
    stats = observe(module, layers, batches)
    scales = {}
    for norm, consumers in module.backbone.norm_consumers():
        act = stats[consumers[0]].input.channel_absmax.clamp_min(1e-6)
        if act.max() < MIN_SPREAD * act.median():
            continue
        weight = torch.stack([_input_absmax(layers[c].weight) for c in consumers]).amax(0).clamp_min(1e-6)
        scales[norm] = (act ** alpha / weight ** (1 - alpha)).clamp(1 / LIMIT, LIMIT)
    return scales


@torch.no_grad()
def apply_smoothing(module: nn.Module, scales: dict[str, Tensor], inside_norm: bool = False) -> None:
    """Divide each norm's output by its scales (through its gain and bias, or inside the normalisation) and multiply
    the input columns of the layers it feeds."""
    backbone = module.backbone
    named = dict(backbone.named_modules())
    for norm, consumers in backbone.norm_consumers():
        if norm not in scales:
            continue
        s = scales[norm]
        if inside_norm:
            parent, _, attr = norm.rpartition(".")
            scaled = ScaledLayerNorm(named[norm], s, isinstance(named[norm], (ChannelsFirstLayerNorm, ChannelNorm)))
            setattr(backbone.get_submodule(parent) if parent else backbone, attr, scaled)
        else:
            named[norm].weight.div_(s)
            named[norm].bias.div_(s)
        for name in consumers:
            named[name].weight.mul_(_along_inputs(s, named[name].weight))

