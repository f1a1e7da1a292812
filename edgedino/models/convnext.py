"""DINOv3 ConvNeXt: the classic four-stage ConvNeXt whose CLS is the pooled last stage."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgedino.models.backbone import Backbone
from edgedino.models.block import drop_path, fold_scale
from edgedino.models.config import ConvNeXtConfig
from edgedino.models.convnext_deploy import DeployConvNeXtBlock, channel_norm


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over C of an NCHW tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv, LayerNorm, 4x pointwise MLP, LayerScale, residual."""

    def __init__(self, dim: int, eps: float, layerscale: float | None, drop: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layerscale))) if layerscale else None
        self.drop = drop
        self.checkpointing = False  # training: recompute this block's activations in the backward pass

    def forward(self, x: Tensor) -> Tensor:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(self._residual, x, use_reentrant=False)
        return self._residual(x)

    def _residual(self, x: Tensor) -> Tensor:
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + drop_path(y.permute(0, 3, 1, 2), self.drop, self.training)


class ConvNeXt(Backbone):
    def __init__(self, cfg: ConvNeXtConfig, drop_path: float = 0.0):
        super().__init__()
        self.cfg = cfg
        dims, eps = cfg.dims, cfg.layer_norm_eps
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(cfg.in_chans, dims[0], 4, stride=4), ChannelsFirstLayerNorm(dims[0], eps=eps))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i], eps=eps), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
               for i in range(3)]
        )
        n = sum(cfg.depths)
        rates = [drop_path * i / max(n - 1, 1) for i in range(n)]
        starts = [sum(cfg.depths[:i]) for i in range(4)]
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dims[i], eps, cfg.layerscale_init, rates[starts[i] + j])
                            for j in range(cfg.depths[i])))
            for i in range(4)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=eps)
        self.reset_parameters()

    def _reset_extra(self, gen: torch.Generator | None) -> None:
        for m in self.modules():
            if isinstance(m, ConvNeXtBlock) and m.gamma is not None:
                nn.init.constant_(m.gamma, self.cfg.layerscale_init)

    def _stages(self, x: Tensor):
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
            yield x

    def _tokens(self, x: Tensor, norm: bool = True) -> dict[str, Tensor]:
        """[mean-pooled CLS; patch tokens] through the final norm, as the official ConvNeXt does."""
        B, C, h, w = x.shape
        tokens = torch.cat([x.mean((-2, -1))[:, None], x.flatten(2).transpose(1, 2)], dim=1)
        if norm:
            tokens = self.norm(tokens)
        return {"cls": tokens[:, 0], "registers": tokens[:, :0], "patch_tokens": tokens[:, 1:].reshape(B, h, w, C)}

    def forward_features(self, x: Tensor, masks: Tensor | None = None, local: bool = False) -> dict[str, Tensor]:
        if masks is not None:
            raise ValueError("ConvNeXt has no mask token: masked-image modelling needs a ViT")
        self.grid(x.shape[-2], x.shape[-1])
        *_, last = self._stages(x)
        return self._tokens(last)

    def norm_consumers(self) -> list[tuple[str, list[str]]]:
        """Each LayerNorm whose output feeds only linear or convolution layers, with those layers (by name): the
        pairs along which a per-channel scale moves exactly from one to the other (SmoothQuant). The stem's norm
        feeds the residual stream, so it is not one."""
        pairs = [(f"downsample_layers.{i}.0", [f"downsample_layers.{i}.1"]) for i in range(1, 4)]
        pairs += [(f"stages.{s}.{b}.norm", [f"stages.{s}.{b}.pwconv1"])
                  for s, stage in enumerate(self.stages) for b in range(len(stage))]
        return pairs

    def deploy(self, imgsz: tuple[int, int]) -> ConvNeXt:
        """Eval mode for one size: LayerScale folded into each block's last layer, every block and norm in NCHW
        (convnext_deploy: no permutes between the convolutions and the linears)."""
        super().deploy(imgsz)
        for stage in self.stages:
            for i, block in enumerate(stage):
                if isinstance(block, ConvNeXtBlock):
                    if block.gamma is not None:
                        fold_scale(block.pwconv2, block.gamma)
                    stage[i] = DeployConvNeXtBlock(block)
        for down in self.downsample_layers:
            for i, layer in enumerate(down):
                if isinstance(layer, ChannelsFirstLayerNorm):
                    down[i] = channel_norm(layer)
        return self

    def get_intermediate_layers(self, x: Tensor, n: int | Sequence[int] = 1, norm: bool = True) -> list[dict]:
        """Outputs of the last `n` stages (or the stages listed); only the last stage is normalised."""
        self.grid(x.shape[-2], x.shape[-1])
        take = range(4 - n, 4) if isinstance(n, int) else n
        return [self._tokens(y, norm and i == 3) for i, y in enumerate(self._stages(x)) if i in take]
