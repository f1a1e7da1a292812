"""Stress weights: the activation outliers of real DINOv3 weights, built into a seeded random ViT or ConvNeXt.

Random weights have none of what trained DINO models show and what breaks per-tensor int8 (Bondarenko et al.
2021): a few residual channels with very large values, the same for every patch and image and growing with
depth, shrunk again by the final LayerNorm's gains (DINOv3, arXiv 2508.10104, App. A.2); massive MLP hidden
units at fixed dimensions that act as biases, and high-norm register tokens (Sun et al. 2024, "Massive
activations"). `stress()` writes each of them into the weights at a chosen severity (0: none). The blocks stay
functional: each LayerNorm's gains and the input columns of the layers it feeds are rescaled so a block
computes about what it did before (a trained network learns the same thing: small weights where the inputs are
huge), so the fp32 features stay sane; they are the reference every quantized artifact is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgedino.models import Backbone, ConvNeXt, create_model

SEVERITIES = (0.0, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class Recipe:
    """Magnitudes at severity 1; every one scales linearly with the severity."""

    residual: float = 60.0  # final residual outlier, in typical residual standard deviations
    massive: float = 300.0  # massive hidden unit, in median |hidden activation| of its layer
    registers: float = 2.0  # register tokens' extra outlier, relative to the final residual outlier
    channels: int = 2  # residual outlier channels (per ConvNeXt stage)
    massive_share: float = 0.25  # share of the final residual outlier each massive unit writes
    norm_gain: float = 10.0  # inner LayerNorms' gains on the outlier channels grow by this (Wei et al. 2022)


@torch.no_grad()
def perturb(net: Backbone, seed: int) -> Backbone:
    """Make every part of a model matter: LayerScale in [0.3, 1], random norm gains and biases, random tokens.

    Default init mutes the blocks (LayerScale 1e-5), which would hide any error made inside them."""
    g = torch.Generator().manual_seed(seed)
    for name, p in net.named_parameters():
        if name.endswith(("lambda1", "gamma")):
            p.copy_(0.3 + 0.7 * torch.rand(p.shape, generator=g))
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias") or "token" in name:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net


def base_weights(model: str, seed: int = 0) -> Backbone:
    """The seeded random backbone the stress weights start from, every block mattering (`perturb`)."""
    return perturb(create_model(model).reset_parameters(seed), seed).eval()


class _Seen(Exception):
    """Raised by a capture hook to stop the forward pass once the wanted activation is seen."""


def capture(model: Backbone, module: nn.Module, images: Tensor, output: bool = False) -> Tensor:
    """The input (or output) of `module` while the model runs on `images`; the rest of the model is not run."""
    seen = []

    def grab(value):
        seen.append(value)
        raise _Seen

    if output:
        handle = module.register_forward_hook(lambda m, args, out: grab(out))
    else:
        handle = module.register_forward_pre_hook(lambda m, args: grab(args[0]))
    try:
        with torch.no_grad():
            model.forward_features(images)
    except _Seen:
        pass
    finally:
        handle.remove()
    return seen[0]


def rows(x: Tensor, channels_first: bool = False, skip: int = 0) -> Tensor:
    """(N, C) rows of an activation (tokens or pixels), the first `skip` tokens of each sample left out."""
    if channels_first:
        x = x.movedim(1, -1)
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    return x[:, skip:].reshape(-1, x.shape[-1])


@torch.no_grad()
def compensate(norm: nn.LayerNorm, consumers: list[nn.Module], x: Tensor, outliers: Tensor,
               shrink: bool = False, gain: float = 1.0) -> None:
    """Rescale a LayerNorm that sees outlier channels so the rest of its output keeps its usual size and offset.
    An inner norm's gains on the outlier channels grow by `gain` (its output keeps the outliers, as in trained
    transformers), and the consumers' input columns there are divided by the channel's typical output, so the
    channel acts as a moderate bias; the final norm (`shrink`) divides its own gains there instead."""
    normal = torch.ones(x.shape[1], dtype=torch.bool)
    normal[outliers] = False
    mu, sd = x.mean(1), x.std(1, unbiased=False)
    mu_n, sd_n = x[:, normal].mean(1), x[:, normal].std(1, unbiased=False)
    ratio, shift = (sd / sd_n).median(), ((mu_n - mu) / sd_n).median()
    size = ((x[:, outliers] - mu[:, None]) / sd[:, None]).abs().median(0).values.clamp_min(1e-6)
    g, b = norm.weight, norm.bias
    b[normal] -= g[normal] * shift
    g[normal] *= ratio
    if shrink:
        g[outliers] /= size
        return
    g[outliers] *= gain
    for layer in consumers:
        layer.weight[:, outliers] /= (size * g[outliers].abs()).reshape(-1, *([1] * (layer.weight.ndim - 2)))


@torch.no_grad()
def _massive_unit(fc1: nn.Linear, fc2: nn.Linear, unit: int, height: float, writes: Tensor, gamma: Tensor,
                  channels: Tensor) -> None:
    """Hidden unit `unit` fires at `height` for every token (GELU is linear there) and fc2 writes `writes` into
    the residual `channels` from it alone (LayerScale `gamma` accounted for)."""
    fc1.weight[unit] *= 0.1
    fc1.bias[unit] = height
    fc2.weight[:, unit] = 0
    fc2.weight[channels, unit] = writes / (height * gamma[channels])


def _gamma(ls: nn.Module | Tensor | None, dim: int) -> Tensor:
    if isinstance(ls, Tensor):
        return ls.detach()
    return ls.gamma.detach() if hasattr(ls, "gamma") else torch.ones(dim)


def _pick(n: int, k: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """k fixed channels out of n, with alternating signs."""
    return torch.randperm(n, generator=g)[:k].sort().values, torch.tensor([(-1.0) ** i for i in range(k)])


def _sigma(model: Backbone, images: Tensor, skip: int) -> float:
    """Typical per-token standard deviation of the residual stream entering the final norm."""
    return float(rows(capture(model, model.norm, images), skip=skip).std(1).median())


def _hidden_median(model: Backbone, fc2: nn.Linear, images: Tensor) -> float:
    return float(capture(model, fc2, images).abs().median())


@torch.no_grad()
def _stress_vit(model: Backbone, severity: float, images: Tensor, recipe: Recipe, g: torch.Generator) -> None:
    cfg, blocks = model.cfg, model.blocks
    if cfg.ffn != "mlp":
        raise ValueError(f"stress weights need a GELU MLP; {cfg.name} has {cfg.ffn}")
    skip = 1 + cfg.n_registers
    channels, signs = _pick(cfg.embed_dim, recipe.channels, g)
    unit = int(torch.randint(cfg.ffn_hidden, (1,), generator=g))
    amplitude = severity * recipe.residual * _sigma(model, images, skip)
    massive = sorted({len(blocks) // 3, (2 * len(blocks)) // 3})
    heights = {i: severity * recipe.massive * _hidden_median(model, blocks[i].mlp.fc2, images) for i in massive}
    step = amplitude * (1 - recipe.massive_share * len(massive)) / len(blocks)
    for i, blk in enumerate(blocks):
        blk.attn.proj.bias[channels] += signs * step / _gamma(blk.ls1, cfg.embed_dim)[channels]
        if i in heights:
            _massive_unit(blk.mlp.fc1, blk.mlp.fc2, unit, heights[i], signs * recipe.massive_share * amplitude,
                          _gamma(blk.ls2, cfg.embed_dim), channels)
    if cfg.n_registers:
        model.storage_tokens[..., channels] += signs * recipe.registers * amplitude
    gain = 1 + severity * recipe.norm_gain
    for blk in blocks:
        compensate(blk.norm1, [blk.attn.qkv], rows(capture(model, blk.norm1, images), skip=skip), channels, gain=gain)
        compensate(blk.norm2, [blk.mlp.fc1], rows(capture(model, blk.norm2, images), skip=skip), channels, gain=gain)
    compensate(model.norm, [], rows(capture(model, model.norm, images), skip=skip), channels, shrink=True)


@torch.no_grad()
def _stress_convnext(model: ConvNeXt, severity: float, images: Tensor, recipe: Recipe, g: torch.Generator) -> None:
    dims = model.cfg.dims
    picks = [_pick(d, recipe.channels, g) for d in dims]
    units = [int(torch.randint(4 * d, (1,), generator=g)) for d in dims]
    amplitude = severity * recipe.residual * _sigma(model, images, 1)
    blocks = [(s, blk) for s, stage in enumerate(model.stages) for blk in stage]
    third = [blk for s, blk in blocks if s == 2]
    massive = {id(third[len(third) // 3]), id(third[(2 * len(third)) // 3])}
    heights = {id(b): severity * recipe.massive * _hidden_median(model, b.pwconv2, images)
               for _, b in blocks if id(b) in massive}
    step = amplitude * (1 - recipe.massive_share * len(massive)) / len(blocks)
    reached = 0.0
    for s, blk in blocks:
        channels, signs = picks[s]
        if blk is model.stages[s][0] and s > 0:
            model.downsample_layers[s][1].bias[channels] += signs * reached
        blk.pwconv2.bias[channels] += signs * step / _gamma(blk.gamma, dims[s])[channels]
        reached += step
        if id(blk) in heights:
            write = recipe.massive_share * amplitude
            _massive_unit(blk.pwconv1, blk.pwconv2, units[s], heights[id(blk)], signs * write,
                          _gamma(blk.gamma, dims[s]), channels)
            reached += write
    gain = 1 + severity * recipe.norm_gain
    for s, stage in enumerate(model.stages):
        if s > 0:
            norm, conv = model.downsample_layers[s]
            compensate(norm, [conv], rows(capture(model, norm, images), channels_first=True), picks[s - 1][0],
                       gain=gain)
        for blk in stage:
            compensate(blk.norm, [blk.pwconv1], rows(capture(model, blk.norm, images)), picks[s][0], gain=gain)
    compensate(model.norm, [], rows(capture(model, model.norm, images), skip=1), picks[-1][0], shrink=True)


def stress(model: Backbone, severity: float, images: Tensor, seed: int = 0, recipe: Recipe = Recipe()) -> Backbone:
    """Write DINOv3-like outliers of `severity` into `model` (in place, training form); `images` (N, 3, H, W)
    calibrate the magnitudes. Severity 0 leaves the weights as they are."""
    if severity < 0:
        raise ValueError(f"severity must be >= 0, got {severity}")
    if severity > 0:
        g = torch.Generator().manual_seed(seed + 1)
        (_stress_convnext if isinstance(model, ConvNeXt) else _stress_vit)(model.eval(), severity, images, recipe, g)
    return model


def sample_batch(size: int = 224, count: int = 4) -> Tensor:
    """The photos shipped with edgedino, preprocessed: what the stress weights are calibrated on."""
    from edgedino.runtime.frames import model_inputs, read_frames

    return torch.from_numpy(model_inputs(read_frames(None, count), (size, size)))


def stress_weights(model: str, severity: float, seed: int = 0, size: int = 224) -> Backbone:
    """The seeded base weights of `model` with outliers of `severity` written in (eval mode, training form)."""
    return stress(base_weights(model, seed), severity, sample_batch(size), seed)


def main(argv: list[str] | None = None) -> None:
    """Print the statistic each severity reaches at each site; optionally save each weights file."""
    import argparse
    from pathlib import Path

    from edgedino import save_backbone
    from edgedino.bench.outlier_stats import statistics

    p = argparse.ArgumentParser(prog="python -m edgedino.bench.stress_weights", description=main.__doc__)
    p.add_argument("--model", default="vits16")
    p.add_argument("--severity", default=",".join(f"{s:g}" for s in SEVERITIES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="folder to write <model>_stress<severity>.pt into")
    args = p.parse_args(argv)
    severities = [float(s) for s in args.severity.split(",")]
    images = sample_batch()
    table = {}
    for severity in severities:
        net = stress_weights(args.model, severity, args.seed)
        table[severity] = statistics(net, images)
        if args.save:
            save_backbone(net, Path(args.save) / f"{args.model}_stress{severity:g}.pt", "edgedino")
    print(f"{args.model}: max |x| / median |x| per site (sanity rows: cosines, finite 1 = yes)")
    print(f"{'site':<36}" + "".join(f"{'severity ' + format(s, 'g'):>14}" for s in severities))
    for site in table[severities[0]]:
        print(f"{site:<36}" + "".join(f"{table[s][site]:>14.3g}" for s in severities))


if __name__ == "__main__":
    main()
