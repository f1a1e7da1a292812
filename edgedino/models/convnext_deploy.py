"""ConvNeXt's deploy form: every tensor NCHW from stem to head, so runtimes keep their own blocked layout and
insert no NCHW<->NHWC reorders inside blocks. Exact in real arithmetic; fp32 agrees with the training form."""

from __future__ import annotations

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
