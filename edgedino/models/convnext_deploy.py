"""ConvNeXt's deploy form: every tensor NCHW from stem to head, so runtimes keep their own blocked layout and
insert no NCHW<->NHWC reorders inside blocks. Exact in real arithmetic; fp32 agrees with the training form."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over C of an NCHW tensor written as reductions over dim 1: no permutes (runtimes fuse it)."""

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(1, keepdim=True)
        normed = centred / torch.sqrt(centred.square().mean(1, keepdim=True) + self.eps)
        return normed * self.weight[:, None, None] + self.bias[:, None, None]


def channel_norm(norm: nn.LayerNorm) -> ChannelNorm:
    """A ChannelNorm with `norm`'s gain, bias and eps."""
    out = ChannelNorm(norm.normalized_shape, eps=norm.eps)
    out.load_state_dict(norm.state_dict())
    return out


@torch.no_grad()
def pointwise_conv(linear: nn.Linear) -> nn.Conv2d:
    """The 1x1 convolution that applies `linear` to every pixel of an NCHW tensor."""
    conv = nn.Conv2d(linear.in_features, linear.out_features, 1, bias=linear.bias is not None)
    conv.weight.copy_(linear.weight[:, :, None, None])
    if linear.bias is not None:
        conv.bias.copy_(linear.bias)
    return conv


class DeployConvNeXtBlock(nn.Module):
    """ConvNeXtBlock (LayerScale folded) in NCHW: 7x7 depthwise, channel norm, two 1x1 convs, residual."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.dwconv = block.dwconv
        self.norm = channel_norm(block.norm)
        self.pwconv1 = pointwise_conv(block.pwconv1)
        self.pwconv2 = pointwise_conv(block.pwconv2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pwconv2(F.gelu(self.pwconv1(self.norm(self.dwconv(x)))))


class BandedDepthwise(nn.Conv2d):
    """A stride-1 depthwise convolution computed as bands of kernel rows, each of at most `taps` taps, summed.

    XNNPACK (LiteRT's CPU delegate) has direct depthwise kernels up to 25 taps; a 7x7 one falls back to a grouped
    GEMM, 72 % of ConvNeXt-T int8's time in LiteRT's profile. Bands of 3 rows (21 taps) run the direct kernel.
    Same weights and state_dict as the convolution it replaces; equal to it up to float summation order."""

    taps = 25

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not bandable(self, any_size=True):
            raise ValueError("BandedDepthwise is a stride-1, undilated, zero-padded depthwise convolution of at most "
                             f"{self.taps} taps per kernel row; got {self}")

    def forward(self, x: Tensor) -> Tensor:
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        rows = self.taps // kw
        out_h = x.shape[-2] + 2 * ph - kh + 1
        x = F.pad(x, (pw, pw, ph, ph))
        out = None
        for top in range(0, kh, rows):
            bottom = min(top + rows, kh)
            band = F.conv2d(x[..., top:top + out_h + bottom - top - 1, :], self.weight[:, :, top:bottom],
                            self.bias if top == 0 else None, groups=self.groups)
            out = band if out is None else out + band
        return out


def bandable(conv: nn.Conv2d, any_size: bool = False) -> bool:
    """Whether `conv` is a depthwise convolution BandedDepthwise computes (and, unless `any_size`, one with more than
    BandedDepthwise.taps taps, which XNNPACK would run as a grouped GEMM)."""
    (kh, kw), taps = conv.kernel_size, BandedDepthwise.taps
    return (conv.groups == conv.in_channels == conv.out_channels and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and kw <= taps and (any_size or kh * kw > taps))


def banded_depthwise(module: nn.Module) -> nn.Module:
    """`module` with every depthwise convolution of more than BandedDepthwise.taps taps in its banded form: a copy
    when there is one to swap, else `module` itself."""
    if not any(type(m) is nn.Conv2d and bandable(m) for m in module.modules()):
        return module
    module = copy.deepcopy(module)
    for parent in list(module.modules()):
        for name, conv in parent.named_children():
            if type(conv) is nn.Conv2d and bandable(conv):
                banded = BandedDepthwise(conv.in_channels, conv.out_channels, conv.kernel_size,
                                         padding=conv.padding, groups=conv.groups, bias=conv.bias is not None)
                banded.load_state_dict(conv.state_dict())
                setattr(parent, name, banded.to(conv.weight.device, conv.weight.dtype))
    return module
