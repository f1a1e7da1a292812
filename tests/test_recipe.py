"""The DINOv3 recipe number for number: the presets against the recipe table (and the official files when a checkout
is given), the schedules' official shapes, the Gram refresh cap, the frozen last layer's kept Adam moments,
per-part clipping, the official parameter groups, blur as trained, mixed resolutions per batch, RoPE per block."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edgedino.train import schedules
from edgedino.train.config import load_config, preset_path
from edgedino.train.recipe import load_table, our_value, preset_config, render

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table() -> dict:
    return load_table()


def test_presets_match_the_recipe_table(table):
    configs = {name: preset_config(name) for name in table["presets"]}
    checked = 0
    for row in table["rows"]:
        assert row["preset"] in configs, row
        if row.get("ours_key") is None:
            assert row.get("where") or row.get("why"), f"{row['key']}: a built-in row says where it is done"
            continue
        value = our_value(configs[row["preset"]], row["ours_key"])
        assert value == pytest.approx(row["ours"]) if _numeric(value) else value == row["ours"], row
        official = row.get("match", row["official"])
        if "why" in row:  # a deliberate difference must still be one
            assert value != official, f"{row['preset']} {row['ours_key']} now matches: drop the `why`"
        else:
            assert value == pytest.approx(official) if _numeric(value) else value == official, row
        checked += 1
    assert checked >= 100 and {r["preset"] for r in table["rows"]} == set(table["presets"])


def _numeric(v) -> bool:
    return isinstance(v, (int, float, list)) and not isinstance(v, bool) and not (
        isinstance(v, list) and not all(isinstance(x, (int, float)) for x in v))


def test_recipe_page_is_rendered_from_the_table(table):
    assert (ROOT / "docs" / "recipe.md").read_text() == render(table), \
        "docs/recipe.md is stale: python -m edgedino.train.recipe > docs/recipe.md"


@pytest.mark.skipif(not os.environ.get("DINOV3_SRC"), reason="set DINOV3_SRC to a facebookresearch/dinov3 checkout")
def test_official_values_against_a_dinov3_checkout(table):
    """Every row whose key is a dotted config key holds the value the official file has."""
    root = Path(os.environ["DINOV3_SRC"]) / "dinov3"
    default = yaml.safe_load((root / "configs/ssl_default_config.yaml").read_text())
    for preset, source in table["presets"].items():
        official = yaml.safe_load((root / source).read_text())
        for row in (r for r in table["rows"] if r["preset"] == preset and " " not in r["key"]):
            node, fallback = official, default
            for part in row["key"].split("."):
                node = node.get(part) if isinstance(node, dict) else None
                fallback = fallback.get(part) if isinstance(fallback, dict) else None
            found = node if node is not None else fallback
            if found is None and row["official"] is None:
                continue
            assert found == pytest.approx(row["official"]) if _numeric(found) else found == row["official"], row


def test_dinov3_schedules_are_constant_after_warmup_and_high_res_rises():
    pre = load_config(preset_path("vits16"))
    at = lambda cfg, s: schedules.at(cfg, s)  # noqa: E731
    peak = 5e-5 * 4 * (4096 / 1024) ** 0.5  # the sqrt rule at the global batch of 4096
    assert at(pre, 0).lr == 0 and at(pre, 50000).lr == pytest.approx(peak / 2)
    for s in (100000, 500000, 999999):
        v = at(pre, s)
        assert (v.lr, v.weight_decay, v.momentum, v.teacher_temp) == (pytest.approx(peak), 0.04, 0.994, 0.07)
    assert at(pre, 4999).last_layer_lr == 0 and at(pre, 5000).last_layer_lr == at(pre, 5000).lr > 0
    half = load_config(preset_path("vits16"), ["run.batch=1024"])
    assert at(half, 200000).lr == pytest.approx(5e-5 * 4)
    hr = load_config(preset_path("high_res_adapt"))
    end = 1.25e-5 * 4 * (2048 / 1024) ** 0.5
    lrs = [at(hr, s).lr for s in range(0, 12000, 500)]
    assert lrs[0] == 0 and all(a <= b for a, b in zip(lrs, lrs[1:], strict=False))
    assert at(hr, 9999).lr == pytest.approx(end)
    assert at(hr, 20000).lr == pytest.approx(end) and at(hr, 0).gram_weight == 1.5 and at(hr, 0).local_weight == 0.5


def test_gram_stage_ramp_and_refresh_cap():
    cfg = load_config(preset_path("gram_anchor"))
    refreshes = [s for s in range(999000, 1200000) if schedules.gram_refresh(cfg, s)]
    assert refreshes == [1000000, 1010000, 1020000, 1030000]  # the snapshot at the start, then 3 updates
    at = [schedules.at(cfg, s) for s in (999999, 1000000, 1000500, 1000999, 1001000, 1100000)]
    assert [a.gram_weight for a in at] == [0.0, 0.0, pytest.approx(1.0, abs=2e-3), 2.0, 2.0, 2.0]
    assert [a.local_weight for a in at] == [1.0, 1.0, pytest.approx(0.75, abs=1e-3), 0.5, 0.5, 0.5]
    assert at[-1].lr == pytest.approx(3e-5 * 8) and at[-1].momentum == 0.999
    unlimited = load_config(preset_path("gram_anchor"), ["gram.max_refreshes=0"])
    assert sum(schedules.gram_refresh(unlimited, s) for s in range(1000000, 1200000)) == 20


def _tiny_step(*overrides: str):
    from edgedino.train import distributed
    from edgedino.train.pretrain_step import SSLStep

    return SSLStep(load_config(preset_path("tiny-cpu"), ["model.arch.depth=1", *overrides]), distributed.Dist())


def test_frozen_last_layer_gets_lr_0_and_keeps_its_adam_moments():
    from edgedino.train.optim import apply_schedule, build_optimizer

    step = _tiny_step("optim.freeze_last_layer=3", "optim.weight_decay=0.5", "optim.weight_decay_end=0.5")
    opt = build_optimizer(step.param_groups(), step.cfg.optim.betas)
    last = step.student.dino_head.last_layer.weight
    mlp = step.student.dino_head.mlp[0].weight
    for s in range(4):
        before_last, before_mlp = last.detach().clone(), mlp.detach().clone()
        apply_schedule(opt, schedules.at(step.cfg, s + 10))  # past warm-up: lr > 0
        frozen = schedules.at(step.cfg, s)
        apply_schedule(opt, frozen)
        for p in step.student.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
        assert torch.equal(last, before_last) == (s < 3), s  # lr 0: no step, no weight decay either
        assert not torch.equal(mlp, before_mlp) or frozen.lr == 0
    # the moments followed the gradients all along: after 4 steps of grad 1, exp_avg = 1 - 0.9 ** 4
    assert torch.allclose(opt.state[last]["exp_avg"], torch.full_like(last, 1 - 0.9**4))


def test_gradients_are_clipped_per_part():
    from edgedino.train.optim import clip_parts, clip_per_part

    step = _tiny_step()
    parts = clip_parts(step.student)
    assert len(parts) == 3  # backbone, DINO head, iBOT head
    for i, ps in enumerate(parts):
        for p in ps:
            p.grad = torch.full_like(p, 10.0 if i == 0 else 1e-4)
    head_grads = [p.grad.clone() for p in parts[1]]
    largest = clip_per_part(parts, 1.0)
    norm = lambda ps: float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in ps])))  # noqa: E731
    assert largest > 1000 and norm(parts[0]) == pytest.approx(1.0, rel=1e-4)
    assert all(torch.equal(a, p.grad) for a, p in zip(head_grads, parts[1], strict=True))  # a small head untouched


def test_param_groups_patch_embed_and_convnext_without_layer_decay():
    from edgedino.models import create_model
    from edgedino.train.optim import param_groups

    vit = create_model("vit_test")
    scale = {n: g["lr_scale"] for g in param_groups(vit, "", vit, 0.5, 0.2) for n in g["names"]}
    assert scale["patch_embed.proj.weight"] == pytest.approx(0.2 * 0.5 ** 3)  # 2 blocks: layer 0 of 3
    assert scale["mask_token"] == pytest.approx(0.5**3) and scale["norm.weight"] == 1.0
    convnext = create_model("convnext_test")
    groups = param_groups(convnext, "", convnext, 0.5, 0.2)
    assert {g["lr_scale"] for g in groups} == {1.0}  # official: no `blocks`, no layer decay, no patch-embed factor
    wd = {n: g["wd_scale"] for g in groups for n in g["names"]}
    assert wd["downsample_layers.0.1.weight"] == 1.0 and wd["stages.0.0.gamma"] == 0.0  # the official name rule


def test_blur_probabilities_are_those_that_trained_the_models(monkeypatch):
    """Global crop 1 never blurred, global crop 2 90 % of the time, locals half (official #286, as trained)."""
    from edgedino.train import augment
    from edgedino.train.augment import MultiCrop, MultiCropConfig

    monkeypatch.setattr(augment, "gaussian_blur", lambda x, rng: np.full_like(x, 0.125))  # a blurred crop: flat
    crop = MultiCrop(MultiCropConfig(global_size=16, local_size=8, n_local=4, jitter_p=0, grayscale_p=0,
                                     solarize_p=0, mean=(0, 0, 0), std=(1, 1, 1)))
    img = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    blurred = {"g1": 0, "g2": 0, "local": 0}
    n = 400
    for i in range(n):
        out = crop(img, np.random.default_rng(i))
        flat = lambda x: bool((x == 0.125).all())  # noqa: E731
        blurred["g1"] += flat(out["global"][0])
        blurred["g2"] += flat(out["global"][1])
        blurred["local"] += sum(flat(v) for v in out["local"])
    assert blurred["g1"] == 0
    assert abs(blurred["g2"] / n - 0.9) < 0.05 and abs(blurred["local"] / (4 * n) - 0.5) < 0.05


def test_gram_teacher_crops_are_undistorted_and_larger():
    from edgedino.train.augment import MultiCrop, MultiCropConfig

    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cfg = MultiCropConfig(global_size=16, hr_scale=2.0, hr_undistorted=True, n_local=0, grayscale_p=1.0,
                          mean=(0, 0, 0), std=(1, 1, 1))
    out = MultiCrop(cfg)(img, np.random.default_rng(0))
    assert out["global_hr"].shape[-1] == 32 and out["global"].shape[-1] == 16
    gray = out["global"]
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])  # distorted
    colour = out["global_hr"]
    assert (colour[:, 0] - colour[:, 1]).abs().mean() > 0.05  # the Gram teacher's view kept its colours


def test_mixed_resolutions_one_per_batch_the_same_on_every_process(tmp_path, image_paths):
    from edgedino.data.loader import DataConfig, make_loader
    from edgedino.train.augment import MultiCrop, MultiCropConfig

    rows = ((32, 16, 0.5), (48, 16, 0.3), (48, 24, 0.2))
    crop = MultiCrop(MultiCropConfig(global_size=32, local_size=16, n_local=1, resolutions=rows))
    data = DataConfig([str(Path(image_paths[0]).parent)], workers=0)
    sizes = []
    for rank in range(2):
        stream = make_loader(data, crop, batch_size=2, seed=3, rank=rank, world=2)
        sizes.append([(b["global"].shape[-1], b["local"].shape[-1]) for b, _ in zip(stream, range(12), strict=False)])
    assert sizes[0] == sizes[1]  # every process draws the same pair for the same step
    assert len(set(sizes[0])) >= 2 and set(sizes[0]) <= {r[:2] for r in rows}
    resumed = make_loader(data, crop, batch_size=2, seed=3, rank=0, world=2, start_step=5)
    assert [(b["global"].shape[-1], b["local"].shape[-1]) for b, _ in zip(resumed, range(7), strict=False)] \
        == sizes[0][5:]


def test_rope_rescale_is_drawn_for_every_block():
    from edgedino.models import create_model

    net = create_model("vit_test").train()
    calls = []
    original = net.rope_embed._tables

    def record(h, w, rescale=None):
        calls.append(rescale)
        return original(h, w, rescale)

    net.rope_embed._tables = record
    net.forward_features(torch.zeros(1, 3, 32, 32))
    assert len(calls) == len(net.blocks) and len({float(c) for c in calls}) == len(net.blocks)
    calls.clear()
    net.eval().forward_features(torch.zeros(1, 3, 32, 32))
    assert all(c is None for c in calls)  # inference: no jitter (one cached table)


def test_high_res_steps_take_every_resolution_pair():
    """The SSL step on batches of two (global, local) pairs, a local side that is not a multiple of the stride
    (cut as the official patch embedding cuts it: 40 px -> 32), the Gram teacher at 1.5x, undistorted."""
    from edgedino.runtime.frames import sample_images
    from edgedino.runtime.preprocess import read_image
    from edgedino.train.run import make_transform

    step = _tiny_step("crops.resolutions=[[64, 40, 1], [96, 32, 1]]", "gram.teacher_scale=1.5", "gram.start=0",
                      "gram.warmup=0", "run.batch=4")
    crops = make_transform(step.cfg)
    photos = [read_image(p) for p in sample_images()[:4]]
    seen = set()
    for batch_index in range(6):
        t = crops.at_batch(0, batch_index)
        items = [t(p, np.random.default_rng(i)) for i, p in enumerate(photos)]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        assert batch["global_hr"].shape[-1] == batch["global"].shape[-1] * 3 // 2
        terms = step.loss(batch, batch_index, schedules.at(step.cfg, batch_index))
        assert all(torch.isfinite(v) for v in terms.values())
        seen.add(tuple(batch["global"].shape[-1:] + batch["local"].shape[-1:]))
    assert seen == {(64, 40), (96, 32)}
