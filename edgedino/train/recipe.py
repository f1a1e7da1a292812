"""The DINOv3 recipe table (configs/recipe.yaml): official keys and values against the preset keys that carry them,
read back from the presets (tests/test_recipe.py) and rendered as docs/recipe.md."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from edgedino.train.config import CONFIGS, TrainConfig

TABLE = CONFIGS / "recipe.yaml"
OFFICIAL_ROOT = "dinov3/"


def load_table(path: Path = TABLE) -> dict:
    from edgedino.train.config import _Loader

    return yaml.load(path.read_text(), Loader=_Loader)


def preset_config(name: str) -> TrainConfig:
    """A preset of the table as edgedino reads it (the distill stage through the distillation config)."""
    from edgedino.train import config, distill_config

    if name == "distill":
        return distill_config.load_config(distill_config.preset_path(name))
    return config.load_config(config.preset_path(name))


def _get(node, part: str):
    if isinstance(node, dict):
        return node[part]
    if isinstance(node, (list, tuple)):
        return node[int(part)]
    return getattr(node, part)


def our_value(cfg: TrainConfig, key: str):
    """The value `key` names in a config: dotted fields, list indices, `arch.X` (the model's architecture after
    model.arch), `crops.X` (MultiCropConfig's default when the preset does not set it), `*` maps over a list."""
    from edgedino.models import get_config
    from edgedino.train.augment import MultiCropConfig

    parts = key.split(".")
    if parts[0] == "arch":
        node = dataclasses.replace(get_config(cfg.model.name), **cfg.model.arch)
        parts = parts[1:]
    elif parts[0] == "crops":
        node = dataclasses.asdict(MultiCropConfig()) | cfg.crops
        parts = parts[1:]
    else:
        node = cfg
    return _walk(node, parts)


def _walk(node, parts: list[str]):
    for i, part in enumerate(parts):
        if part == "*":
            return [_walk(item, parts[i + 1:]) for item in node]
        node = _get(node, part)
    return list(node) if isinstance(node, tuple) else node


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def render(table: dict) -> str:
    """docs/recipe.md: one table per preset, official file and key, its value, our key and value, notes."""
    out = [HEADER]
    for preset, source in table["presets"].items():
        out += [f"\n## `{preset}` against `{OFFICIAL_ROOT}{source}`\n",
                "| official key | official | edgedino key | edgedino | note |", "|---|---|---|---|---|"]
        for row in (r for r in table["rows"] if r["preset"] == preset):
            official = _cell(row["official"]) + (f" (= {_cell(row['match'])})" if "match" in row else "")
            note = f"**differs**: {row['why']}" if "why" in row else row.get("where", "")
            key = f"`{row['ours_key']}`" if row.get("ours_key") else "(built in)"
            out.append(f"| `{row['key']}` | {official} | {key} | {_cell(row['ours'])} | {' '.join(note.split())} |")
    return "\n".join(out) + "\n" + FOOTER


HEADER = """# The DINOv3 recipe in edgedino, key by key

Generated from `edgedino/train/configs/recipe.yaml` by `python -m edgedino.train.recipe > docs/recipe.md`;
`tests/test_recipe.py` loads each preset and checks every value below against it, so the presets and this page
cannot drift apart. Official values are those of facebookresearch/dinov3 (files under `dinov3/`); "(= x)" is the
official value in edgedino's units (steps = epochs x OFFICIAL_EPOCH_LENGTH: 1000 for the 7B stages, 1250 for
distillation). Rows marked **differs** are deliberate, with the reason.

Stages: `vits16` (= the `pretrain` stage with a ViT-S/16) -> `gram_anchor` (the same run continued:
`continue_from=<run>`) -> `high_res_adapt` (a new run from the anchored teacher: `init=<run>/checkpoint.pth`).
Distillation: the `distill` stage of `edgedino distill`."""

FOOTER = """
## Behaviour that is not a config value

- Heads: an L2-normalised bottleneck, then an unconstrained linear last layer (no weight norm), all weights
  truncated-normal std 0.02 (`layers/dino_head.py`).
- Parameter groups (`train/param_groups.py`): no weight decay on biases, norms and LayerScale (tokens are decayed),
  0.2x lr on the ViT patch embedding, layer-wise decay over ViT blocks only, the heads' last layers in their own
  groups with lr 0 while frozen (their AdamW moments still update).
- Gradient clipping per part: backbone, DINO head, iBOT head (`train/train.py`).
- iBOT masks: image i of the masked half gets exactly int(N x r_i) patches, r_i the upper edges of equal slices of
  [0.1, 0.5]; block masking topped up with random patches to the exact count (`data/masking.py`, `collate.py`).
  edgedino draws the masks for the global batch, so N processes see what one would (official: per GPU batch).
- DINO loss: global and local terms weighted by their share of crop pairs (2 global, 2 x 8 local), the local term
  by `loss.local_weight` (`compute_losses`).
- RoPE: each block draws its own coordinate rescale in training.
- Gram teacher: refreshed after every `gram.refresh_every` steps from the stage start, at most `gram.max_refreshes`
  times (official `max_updates`), the first Gram teacher being the teacher the stage continues from.
- Distillation: students are not masked; the DINO loss leaves out the same-view global pairs; ConvNeXt students get
  the iBOT patch loss too (no mask token is needed for an unmasked student).

## Training past one GPU's memory

`run.parallel=fsdp` (through `torchrun`) shards every model with FSDP2 (`torch.distributed.fsdp.fully_shard`):
each block, each backbone, each head, all resharded after forward as the official code does; bf16 parameters with
fp32 gradient reductions on CUDA. The EMA teacher, the Gram teacher and a distillation teacher are sharded too and
take no gradients (under DDP a distillation teacher is held in bf16 when the run computes in bf16).
`run.activation_checkpointing=true` recomputes each block in the backward pass. Checkpoints are then sharded
(`checkpoint.dcp/`, torch.distributed.checkpoint, the official layout) and resume exactly; `edgedino.load_backbone`
reads their teacher. DDP (`run.parallel=ddp`, the default) stays for models that fit. A GPU check of both, with
images/s and peak memory (ViT-S/16 pretraining, ViT-S from ViT-L and ViT-H+ teachers): `benchmarks/fsdp_gpu_check.sh`.
"""


if __name__ == "__main__":
    print(render(load_table()), end="")
