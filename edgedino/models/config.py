"""Named model configs (the registry): one dataclass per family, one entry per preset."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from edgedino.errors import ConfigError, did_you_mean


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"model config: {message}")


def _is_int(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_ints(cfg, names: tuple[str, ...], low: int) -> None:
    for name in names:
        value = getattr(cfg, name)
        _require(_is_int(value, low), f"{name}={value!r} must be an integer >= {low}")


def _check_common(cfg) -> None:
    """What every family needs: channels, a positive norm epsilon, a finite LayerScale init."""
    _check_ints(cfg, ("in_chans",), 1)
    _require(_is_number(cfg.layer_norm_eps) and cfg.layer_norm_eps > 0,
             f"layer_norm_eps={cfg.layer_norm_eps!r} must be a number > 0")
    _require(cfg.layerscale_init is None or _is_number(cfg.layerscale_init),
             f"layerscale_init={cfg.layerscale_init!r} must be a finite number (or null)")


@dataclass(frozen=True)
class ViTConfig:
    """A DINOv3 vision transformer: registers, axial RoPE on patch tokens, LayerScale, masked key bias."""

    name: str = "custom"
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    ffn: str = "mlp"  # "mlp" (GELU) or "swiglu"
    ffn_hidden: int = 1536  # hidden width as stored in the weights
    patch_size: int = 16
    in_chans: int = 3
    n_registers: int = 4
    rope_base: float = 100.0
    rope_rescale: float | None = 2.0  # training-time coordinate rescale jitter, in [1/s, s]
    layer_norm_eps: float = 1e-5
    layerscale_init: float | None = 1e-5
    qkv_bias: bool = True
    mask_k_bias: bool = True
    untie_cls_norm: bool = False  # separate norm for CLS + registers (official untie_cls_and_patch_norms; no release)
    local_cls_norm: bool = False  # training-only norm for local crops' CLS + registers (7B, ViT-L/16 SAT-493M)
    family: str = field(default="vit", init=False)

    def __post_init__(self) -> None:
        """Every field in range on its own, whatever made the config (preset, YAML override, config.json)."""
        _check_common(self)
        _check_ints(self, ("embed_dim", "depth", "num_heads", "ffn_hidden", "patch_size"), 1)
        _check_ints(self, ("n_registers",), 0)
        _require(self.ffn in ("mlp", "swiglu"), f"ffn={self.ffn!r} must be mlp or swiglu")
        _require(_is_number(self.rope_base) and self.rope_base > 0, f"rope_base={self.rope_base!r} must be > 0")
        _require(self.rope_rescale is None or (_is_number(self.rope_rescale) and self.rope_rescale >= 1),
                 f"rope_rescale={self.rope_rescale!r} must be >= 1 (or null: no jitter)")
        for name in ("qkv_bias", "mask_k_bias", "untie_cls_norm", "local_cls_norm"):
            _require(isinstance(getattr(self, name), bool), f"{name}={getattr(self, name)!r} must be true or false")

    def checked(self) -> ViTConfig:
        """This config, once the fields that depend on each other agree (what building a model needs)."""
        _require(self.embed_dim % self.num_heads == 0 and self.head_dim % 4 == 0,
                 f"embed_dim {self.embed_dim} over num_heads {self.num_heads} must give a whole head width "
                 "divisible by 4 (axial RoPE)")
        return self

    @property
    def stride(self) -> int:
        return self.patch_size

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def describe(self) -> str:
        return (f"ViT/{self.patch_size}, dim {self.embed_dim}, {self.depth} blocks, {self.num_heads} heads, "
                f"{self.ffn} FFN {self.ffn_hidden}, {self.n_registers} registers, RoPE base {self.rope_base:g}")


@dataclass(frozen=True)
class ConvNeXtConfig:
    """A DINOv3 ConvNeXt: four stages, CLS = mean-pooled last stage, one final norm over [CLS; patches]."""

    name: str = "custom"
    depths: tuple = (3, 3, 9, 3)
    dims: tuple = (96, 192, 384, 768)
    in_chans: int = 3
    layer_norm_eps: float = 1e-6
    layerscale_init: float | None = 1e-6
    family: str = field(default="convnext", init=False)

    def __post_init__(self) -> None:
        """Four stages of positive depth and width, and the common fields in range."""
        _check_common(self)
        for name in ("depths", "dims"):
            value = getattr(self, name)
            _require(isinstance(value, (tuple, list)) and len(value) == 4 and all(_is_int(v, 1) for v in value),
                     f"{name}={value!r} must be 4 integers >= 1 (one per stage)")

    def checked(self) -> ConvNeXtConfig:
        """This config (every field is checked on its own when it is made)."""
        return self

    @property
    def stride(self) -> int:
        return 32

    @property
    def embed_dim(self) -> int:
        return self.dims[-1]

    def describe(self) -> str:
        return f"ConvNeXt, depths {list(self.depths)}, dims {list(self.dims)}, stride 32"


ModelConfig = ViTConfig | ConvNeXtConfig

MODELS: dict[str, ModelConfig] = {}


def register(cfg: ModelConfig) -> ModelConfig:
    """Add a named preset to the registry."""
    MODELS[cfg.name] = cfg
    return cfg


def _swiglu_hidden(dim: int, ratio: float, align: int = 8) -> int:
    """SwiGLU keeps 2/3 of the nominal hidden width, rounded up to a multiple of `align`."""
    d = int(int(dim * ratio) * 2 / 3)
    return d + (-d % align)


for _name, _dim, _depth, _heads, _ffn, _ratio in [
    ("vits16", 384, 12, 6, "mlp", 4),
    ("vits16plus", 384, 12, 6, "swiglu", 6),
    ("vitb16", 768, 12, 12, "mlp", 4),
    ("vitl16", 1024, 24, 16, "mlp", 4),
    ("vitl16plus", 1024, 24, 16, "swiglu", 6),
    ("vith16plus", 1280, 32, 20, "swiglu", 6),
]:
    _hidden = _swiglu_hidden(_dim, _ratio) if _ffn == "swiglu" else _dim * _ratio
    register(ViTConfig(_name, _dim, _depth, _heads, _ffn, _hidden))

register(ConvNeXtConfig("convnext_tiny", (3, 3, 9, 3), (96, 192, 384, 768)))
register(ConvNeXtConfig("convnext_small", (3, 3, 27, 3), (96, 192, 384, 768)))
register(ConvNeXtConfig("convnext_base", (3, 3, 27, 3), (128, 256, 512, 1024)))
register(ConvNeXtConfig("convnext_large", (3, 3, 27, 3), (192, 384, 768, 1536)))

# Few-parameter presets so that every code path runs in seconds on a 2-core CPU (tests, smoke runs).
register(ViTConfig("vit_test", embed_dim=64, depth=2, num_heads=2, ffn="mlp", ffn_hidden=128))
register(ViTConfig("vit_test_swiglu", embed_dim=64, depth=2, num_heads=2, ffn="swiglu", ffn_hidden=128))
register(ConvNeXtConfig("convnext_test", (1, 1, 2, 1), (16, 32, 64, 128)))

TEST_PRESETS = ("vit_test", "vit_test_swiglu", "convnext_test")


def list_models(include_test: bool = False) -> list[str]:
    """Names of the registered presets."""
    return [n for n in MODELS if include_test or n not in TEST_PRESETS]


def get_config(name: str) -> ModelConfig:
    """The preset called `name`, or a ConfigError listing the known names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}{did_you_mean(name, MODELS)} ("
                          f"known models: {', '.join(list_models(True))})")
    return MODELS[name]


def match_preset(cfg: ModelConfig) -> ModelConfig:
    """The registered preset equal to `cfg` in every architectural field, renamed to it; else `cfg`.

    local_cls_norm is training-only (never used at inference), so ViT-L/16 SAT-493M is still vitl16."""
    arch = [f.name for f in fields(cfg) if f.name not in ("name", "rope_rescale", "local_cls_norm")]
    for preset in MODELS.values():
        if type(preset) is type(cfg) and all(getattr(preset, a) == getattr(cfg, a) for a in arch):
            return replace(cfg, name=preset.name)
    return replace(cfg, name="custom")


def config_to_dict(cfg: ModelConfig) -> dict:
    """A JSON-friendly dict that `config_from_dict` turns back into the same config."""
    d = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.init}
    d["family"] = cfg.family
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_dict(d: dict) -> ModelConfig:
    """The config `config_to_dict` wrote, made by its family's config class."""
    from edgedino.models.families import get_family

    d = dict(d)
    return get_family(d.pop("family")).config_from_dict(d)
