"""FSDP2 (fully_shard) through torchrun on CPU with gloo: 2 processes give the losses of 1, a sharded checkpoint
(torch.distributed.checkpoint) resumes exactly and reads as an official one, activation checkpointing changes
nothing, and a distillation teacher is sharded (or bf16) without gradients."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

ENV = dict(os.environ, OMP_NUM_THREADS="1")
TERMS = ("loss", "dino", "ibot", "koleo", "gram")
# tiny-cpu with every term live (Gram from step 2, its teacher refreshed at 2), nothing random that differs between
# process counts (no RoPE jitter; KoLeo over the same 4-image groups), LayerScale 0.1 so KoLeo is not fp32 noise.
FAST = ["run.batch=8", "run.checkpoint_every=2", "run.total_steps=40", "gram.start=2", "gram.refresh_every=2",
        "gram.warmup=0", "data.workers=0", "model.arch.rope_rescale=null", "model.arch.layerscale_init=0.1",
        "loss.koleo_group=4"]
SCALE = ["run.parallel=fsdp", "run.activation_checkpointing=true"]


def run(*args: str, procs: int = 1, port: int = 29561) -> subprocess.CompletedProcess:
    launch = ["-m", "edgedino"] if procs == 1 else ["-m", "torch.distributed.run", "--nproc_per_node", str(procs),
                                                     "--master_port", str(port), "-m", "edgedino.train"]
    args = args[1:] if procs > 1 and args[0] == "pretrain" else args  # torchrun's entry: pretraining by default
    r = subprocess.run([sys.executable, *launch, *args], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory, image_paths) -> str:
    root = tmp_path_factory.mktemp("photos")
    for p in image_paths:
        shutil.copy(p, root / p.name)
    return str(root)


def test_fsdp_two_processes_equal_one_and_resume_from_shards_exactly(data, tmp_path):
    from edgedino import load_backbone

    head = ["pretrain", "--preset", "tiny-cpu", "--data", data]
    run(*head, "--out", str(tmp_path / "one"), "--max-steps", "4", *FAST)
    done = run(*head, "--out", str(tmp_path / "fsdp"), "--max-steps", "4", *FAST, *SCALE, procs=2)
    assert f"checkpoint             {tmp_path / 'fsdp' / 'checkpoint.dcp'}" in done.stdout  # the file it wrote
    one, fsdp = records(tmp_path / "one"), records(tmp_path / "fsdp")
    assert [r["step"] for r in fsdp] == [0, 1, 2, 3]
    for ra, rb in zip(one, fsdp, strict=True):
        for t in TERMS:
            assert ra[t] == pytest.approx(rb[t], rel=1e-5, abs=1e-5), (ra["step"], t)
    shards = tmp_path / "fsdp" / "checkpoint.dcp"
    assert (shards / ".metadata").is_file() and len(list(shards.glob("*.distcp"))) == 2  # one file per process
    assert not (tmp_path / "fsdp" / "checkpoint.pth").exists()
    exported = load_backbone(tmp_path / "fsdp" / "backbone.pth").state_dict()
    read_back = load_backbone(shards).state_dict()  # the sharded folder reads as an official training checkpoint
    assert all(torch.equal(v, read_back[k]) for k, v in exported.items())
    # cut at step 2, resumed from the shards: the same run to fp32 round-off
    cut = tmp_path / "cut"
    run(*head, "--out", str(cut), "--max-steps", "2", *FAST, *SCALE, procs=2, port=29562)
    run(*head, "--out", str(cut), "--max-steps", "4", *FAST, *SCALE, "--resume", procs=2, port=29563)
    resumed = records(cut)
    assert [r["step"] for r in resumed] == [0, 1, 2, 3]
    for ra, rb in zip(fsdp, resumed, strict=True):
        for t in TERMS:
            assert ra[t] == pytest.approx(rb[t], abs=1e-6, rel=0), (ra["step"], t)


def test_activation_checkpointing_gives_the_same_gradients():
    from edgedino.train import distributed
    from edgedino.train.config import load_config, preset_path
    from edgedino.train.parallel import blocks, enable_checkpointing
    from edgedino.train.pretrain_step import SSLModel, build_backbone

    cfg = load_config(preset_path("tiny-cpu"), ["model.arch.rope_rescale=null"])
    assert distributed.Dist().world == 1
    torch.manual_seed(0)
    plain = SSLModel(build_backbone(cfg), cfg).train()
    recomputed = SSLModel(build_backbone(cfg), cfg).train()
    recomputed.load_state_dict(plain.state_dict())
    enable_checkpointing(recomputed)
    assert len(blocks(recomputed)) == 4 and all(b.checkpointing for b in blocks(recomputed))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for model in (plain, recomputed):
        model(x, None, None)["global_logits"].logsumexp(-1).mean().backward()
    compared = 0
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name
            compared += name.startswith("backbone.blocks.")
    assert compared >= 4 * 8  # every block's weights took part


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory, perturb):
    """A training checkpoint with DINO and iBOT heads of their own sizes (a 2-block ViT/16 of width 96)."""
    from edgedino.models import ViTConfig, create_model
    from edgedino.train.config import load_config, preset_path
    from edgedino.train.pretrain_step import SSLModel
    from edgedino.train.run_state import save_checkpoint

    cfg = load_config(preset_path("tiny-cpu"), ["heads.dino.out_dim=48", "heads.dino.hidden=64",
                                                "heads.dino.bottleneck=16", "heads.ibot.out_dim=32"])
    torch.manual_seed(0)
    net = SSLModel(perturb(create_model(ViTConfig(embed_dim=96, depth=2, num_heads=2, ffn_hidden=192)), 1), cfg)
    out = tmp_path_factory.mktemp("teacher")
    save_checkpoint(out, 1, {}, {"student": net, "teacher": net}, torch.optim.AdamW(net.parameters()))
    return out / "checkpoint.pth"


def test_distillation_with_a_sharded_teacher_equals_one_process(data, teacher_checkpoint, tmp_path):
    args = ["distill", "--preset", "tiny-cpu", "--teacher-weights", str(teacher_checkpoint), "--student", "vit_test",
            "--data", data, "--max-steps", "2", "run.batch=4", "data.workers=0", "model.arch.rope_rescale=null",
            "loss.koleo=0"]  # the preset student's CLS (LayerScale 1e-5) is the same for every image: KoLeo = noise
    run(*args, "--out", str(tmp_path / "one"))
    run(*args, "run.parallel=fsdp", "--out", str(tmp_path / "fsdp"), procs=2, port=29564)
    for ra, rb in zip(records(tmp_path / "one"), records(tmp_path / "fsdp"), strict=True):
        for key in ("loss", "vit_test.dino", "vit_test.ibot"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-5), (ra["step"], key)
    assert (tmp_path / "fsdp" / "vit_test.pth").is_file()


def test_teacher_in_bf16_without_gradients(teacher_checkpoint):
    from edgedino.train import distributed
    from edgedino.train.distill import place_teacher
    from edgedino.train.distill_config import load_config, preset_path
    from edgedino.train.teacher import load_teacher

    teacher, kind = load_teacher(str(teacher_checkpoint), None, "auto", "cpu")
    place_teacher(teacher, load_config(preset_path("tiny-cpu"), ["run.amp=bf16"]), distributed.Dist())
    assert kind == "heads"
    params = list(teacher.parameters())
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cls = teacher.backbone.forward_features(torch.randn(2, 3, 32, 32))["cls"]
    assert torch.isfinite(teacher.dino_head(cls).float()).all()
