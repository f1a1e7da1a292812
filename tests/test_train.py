"""Pretraining as a user runs it: schedules, configs, a tiny run through the CLI, exact resume after SIGKILL,
torchrun with 2 processes against 1, and k-NN / linear evaluation on a labelled set made from the shipped photos."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from edgedino.errors import ConfigError
from edgedino.train import schedules
from edgedino.train.config import load_config, preset_path

TERMS = ("loss", "dino", "ibot", "koleo", "gram")
# A few steps of tiny-cpu with every term live: Gram anchoring from step 2, its teacher refreshed every 2 steps.
FAST = ["run.batch=8", "run.checkpoint_every=2", "run.total_steps=40", "gram.start=2", "gram.refresh_every=2",
        "data.workers=1"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def edgedino(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def losses(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_schedules_follow_the_full_run():
    """DINOv2-style cosine decay stays available: the same official schedule shape with end < peak."""
    cfg = load_config(preset_path("tiny-cpu"), ["run.total_steps=1000", "optim.warmup=100", "optim.lr=1e-3",
                                                "optim.min_lr=1e-6", "optim.scaling_rule=none",
                                                "optim.weight_decay_end=0.2", "ema.momentum_end=1.0",
                                                "loss.teacher_temp_warmup=300", "loss.teacher_temp_start=0.04",
                                                "loss.teacher_temp=0.07", "gram.start=500", "gram.refresh_every=200",
                                                "gram.warmup=0", "gram.weight=1.0"])
    at = [schedules.at(cfg, s) for s in range(1000)]
    assert at[0].lr == 0 and at[100].lr == pytest.approx(1e-3) and at[999].lr == pytest.approx(1e-6, abs=1e-12)
    assert all(a.lr <= b.lr for a, b in zip(at[:100], at[1:101], strict=True))
    assert all(a.lr >= b.lr for a, b in zip(at[100:], at[101:], strict=False))
    assert at[0].momentum == pytest.approx(0.99) and at[999].momentum == pytest.approx(1.0, abs=1e-9)
    assert at[0].teacher_temp == pytest.approx(0.04) and at[150].teacher_temp == pytest.approx(0.055)
    assert at[300].teacher_temp == at[999].teacher_temp == pytest.approx(0.07)
    assert at[0].weight_decay == pytest.approx(0.04) and at[999].weight_decay == pytest.approx(0.2, abs=1e-9)
    assert [s for s, a in enumerate(at) if a.refresh_gram] == [500, 700, 900]
    assert at[499].gram_weight == 0 and at[500].gram_weight == 1.0
    assert schedules.cosine(0, 101, 1.0, 0.0) == 1.0 and schedules.cosine(50, 101, 1.0, 0.0) == pytest.approx(0.5)


def test_configs_stages_presets_and_overrides():
    for name in ("pretrain", "gram_anchor", "high_res_adapt", "vits16", "convnext_tiny", "tiny-cpu"):
        load_config(preset_path(name))
    hr = load_config(preset_path("high_res_adapt"))
    assert hr.gram.teacher_scale == 1.5 and hr.gram.weight == 1.5 and hr.crops["global_size"] == 512
    cfg = load_config(preset_path("tiny-cpu"), ["optim.lr=2e-4", "loss.mask_ratio=[0.2, 0.3]", "run.batch=16"])
    assert cfg.optim.lr == 2e-4 and cfg.loss.mask_ratio == (0.2, 0.3) and cfg.run.batch == 16
    for bad, message in (("optim.lrr=1", "unknown config key 'optim.lrr'"), ("run.batch=x", "run.batch"),
                         ("optim=3", "section"), ("lr", "key=value")):
        with pytest.raises(ConfigError, match=message):
            load_config(preset_path("tiny-cpu"), [bad])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_path("nope")


def test_exponent_numbers_are_floats_everywhere():
    """PyYAML reads `1e-5` as a string; under model.arch (a dict, not coerced) that crashed model creation."""
    cfg = load_config(preset_path("tiny-cpu"), ["model.arch.layerscale_init=1e-5", "optim.lr=2E-4"])
    assert cfg.model.arch["layerscale_init"] == 1e-5 and cfg.optim.lr == 2e-4
    assert load_config(preset_path("tiny-cpu"), ["run.log_every=12"]).run.log_every == 12


def test_layer_decay_and_weight_decay_groups():
    from edgedino.train.optim import param_groups
    from edgedino.train.pretrain_step import SSLModel, build_backbone

    cfg = load_config(preset_path("tiny-cpu"))
    model = SSLModel(build_backbone(cfg), cfg)
    groups = param_groups(model, "backbone.", model.backbone, 0.5)
    scale = {n: (g["lr_scale"], g["wd_scale"]) for g in groups for n in g["names"]}
    depth = cfg.model.arch["depth"]
    assert scale["backbone.patch_embed.proj.weight"] == (0.5 ** (depth + 1), 1.0)
    assert scale["backbone.cls_token"] == (0.5 ** (depth + 1), 1.0)  # tokens are decayed (the official rule)
    assert scale["backbone.blocks.0.attn.qkv.weight"] == (0.5**depth, 1.0)
    assert scale[f"backbone.blocks.{depth - 1}.mlp.fc1.weight"] == (0.5, 1.0)
    assert scale["dino_head.last_layer.weight"] == (1.0, 1.0)
    for no_wd in ("backbone.blocks.0.norm1.weight", "backbone.blocks.0.ls1.gamma",
                  "backbone.blocks.0.attn.qkv.bias", "dino_head.mlp.0.bias"):
        assert scale[no_wd][1] == 0.0, no_wd
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.fixture(scope="module")
def data(tmp_path_factory, image_paths):
    """Training data: the shipped photos and a short video made from them (frames sampled at stride 2)."""
    root = tmp_path_factory.mktemp("data")
    for p in image_paths:
        shutil.copy(p, root / p.name)
    frames = [cv2.resize(cv2.imread(str(p)), (160, 120)) for p in image_paths[:3]]
    video = cv2.VideoWriter(str(root.parent / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(12):
        video.write(np.roll(frames[i % 3], 4 * i, axis=1))
    video.release()
    return [str(root), f"{root.parent / 'clip.avi'}:stride=2"]


@pytest.fixture(scope="module")
def run6(tmp_path_factory, data):
    """An uninterrupted 6-step tiny-cpu run through the CLI."""
    out = tmp_path_factory.mktemp("run6")
    result = edgedino("pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(out), "--max-steps", "6",
                      *FAST)
    assert result.returncode == 0, result.stderr
    return out, result


def test_tiny_run_end_to_end(run6, tmp_path):
    from edgedino import load_backbone

    out, result = run6
    records = losses(out)
    assert [r["step"] for r in records] == list(range(6))
    for r in records:
        assert all(np.isfinite(r[t]) for t in TERMS), r
        assert {"lr", "momentum", "images_per_s", "teacher_entropy", "target_entropy", "feature_std"} <= set(r)
    assert records[0]["gram"] >= 0 and records[-1]["gram"] > 0
    assert "backbone.pth" in result.stdout and "steps done" in result.stdout
    net = load_backbone(out / "backbone.pth")
    assert net.cfg.patch_size == 8 and net.embed_dim == 128
    teacher = load_backbone(out / "checkpoint.pth")  # the training checkpoint reads as an official one
    assert all(np.array_equal(a, b) for a, b in zip(net.state_dict().values(), teacher.state_dict().values(),
                                                      strict=True))
    exported = edgedino("export", "--target", "onnx", "--weights", str(out / "backbone.pth"), "--imgsz", "64",
                        "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr
    assert list((tmp_path / "x").glob("*.onnx"))


def test_resume_after_sigkill_is_exact(run6, data, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "edgedino", "pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(out),
           "--max-steps", "6", *FAST, "run.checkpoint_every=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if (out / "metrics.jsonl").exists() and len(losses(out)) >= 3 and (out / "checkpoint.pth").exists():
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    import torch

    done = torch.load(out / "checkpoint.pth", weights_only=True)["step"]
    assert 2 <= done < 6
    resumed = edgedino("pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(out), "--max-steps", "6",
                       *FAST, "run.checkpoint_every=1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = losses(run6[0]), losses(out)
    assert [r["step"] for r in b] == list(range(6))
    for ra, rb in zip(a[done:], b[done:], strict=True):
        for t in TERMS:
            assert ra[t] == pytest.approx(rb[t], abs=1e-6, rel=0), (ra["step"], t)
    other = edgedino("pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(out), "--max-steps", "6",
                     *FAST, "optim.lr=1e-2", "--resume")
    assert other.returncode == 2 and "optim.lr" in other.stderr


def test_two_processes_equal_one_with_twice_the_batch(data, tmp_path):
    """Global batch 8: 1 process x 8 against torchrun 2 processes x 4, to fp32 tolerance.

    Stochastic depth and RoPE jitter draw from each process's own RNG, so they are off here (tiny-cpu has no drop
    path; RoPE jitter is disabled). KoLeo compares each image with the images of its own process (official), so
    the single process uses groups of 4 to search the same neighbours. LayerScale starts at 0.1, not 1e-5: at 1e-5
    every image's CLS is the same to ~1e-5, and KoLeo's -log(nearest-neighbour distance) then measures fp32
    round-off, which differs between a matmul over 8 images and one over 4 (it moves KoLeo by ~0.5 at step 0 while
    every other term agrees)."""
    head = ["--preset", "tiny-cpu", "--data", *data]
    tail = ["--max-steps", "3", *FAST, "model.arch.rope_rescale=null", "model.arch.layerscale_init=0.1",
            "loss.koleo_group=4"]
    one = edgedino("pretrain", *head, "--out", str(tmp_path / "one"), *tail)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29533", "-m", "edgedino.train", *head, "--out", str(tmp_path / "two"), *tail],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert two.returncode == 0, two.stderr
    for ra, rb in zip(losses(tmp_path / "one"), losses(tmp_path / "two"), strict=True):
        for t in TERMS:
            assert ra[t] == pytest.approx(rb[t], rel=1e-6, abs=1e-6), (ra["step"], t)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, image_paths):
    """4 classes = 4 photos; 10 random crops of each (a labelled set made only from what the repo ships)."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for p in image_paths[:4]:
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        (root / p.stem).mkdir()
        for i in range(10):
            s = int(min(h, w) * rng.uniform(0.3, 0.6))
            y, x = rng.integers(0, h - s), rng.integers(0, w - s)
            cv2.imwrite(str(root / p.stem / f"{i}.png"), img[y:y + s, x:x + s])
    return root


def test_eval_knn_and_linear_on_backbone_and_artifact(labelled, tmp_path, perturb):
    """The same weights as a checkpoint and as an ONNX artifact score the same (LayerScale perturbed to 0.3-1 so
    that images differ by more than fp32 noise: at the 1e-5 init every CLS is nearly the same vector)."""
    from edgedino import create_model, save_backbone

    backbone = save_backbone(perturb(create_model("vit_test"), 0), tmp_path / "net.pth")
    exported = edgedino("export", "--target", "onnx", "--weights", str(backbone), "--imgsz", "64", "--no-verify",
                        "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr
    onnx = next((tmp_path / "x").glob("*.onnx"))
    results = {}
    for protocol in ("knn", "linear"):
        for weights in (backbone, onnx):
            js = tmp_path / f"{protocol}_{weights.suffix}.json"
            r = edgedino("eval", protocol, "--data", str(labelled), "--weights", str(weights), "--imgsz", "64",
                         "--json", str(js))
            assert r.returncode == 0, r.stderr
            results[protocol, weights.suffix] = json.loads(js.read_text())
    knn, lin = results["knn", ".pth"], results["linear", ".pth"]
    assert (knn["classes"], knn["train"], knn["test"]) == (4, 28, 12)
    assert 0 <= knn["top1_k10"] <= 100 and 0 <= knn["top1_k20"] <= 100 and 0 <= lin["top1"] <= 100
    # the same weights exported: the same features up to fp32 noise, so the same accuracies
    assert results["knn", ".onnx"]["top1_k20"] == knn["top1_k20"]
    assert results["linear", ".onnx"]["top1"] == pytest.approx(lin["top1"], abs=100 / 12 + 1e-6)
    bad = edgedino("eval", "knn", "--data", str(tmp_path), "--weights", str(backbone))
    assert bad.returncode == 2 and "class subfolder" in bad.stderr


def test_knn_and_linear_probe_on_known_features():
    from edgedino.eval.knn import knn_accuracy
    from edgedino.eval.linear import linear_accuracy

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    labels = np.repeat(np.arange(3), 20)
    train, test = centres[labels] + rng.normal(size=(60, 16)), centres[labels] + rng.normal(size=(60, 16))
    assert knn_accuracy(train, labels, test, labels, 3) == {10: 100.0, 20: 100.0}
    assert linear_accuracy(train, labels, test, labels, 3)[0] == 100.0
    shuffled = rng.permutation(labels)
    assert knn_accuracy(train, shuffled, test, labels, 3)[20] < 70


def test_bad_input_fails_before_writing(tmp_path):
    for args, message in ((["--data", str(tmp_path / "none")], "data source not found"),
                          (["--data", "edgedino/assets", "run.amp=off"], "quote it"),
                          (["--data", "edgedino/assets", "run.total_steps=0"], "run.total_steps"),
                          (["--data", "edgedino/assets", "--resume"], "nothing to resume")):
        out = tmp_path / "run"
        r = edgedino("pretrain", "--preset", "tiny-cpu", "--out", str(out), *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert not out.exists(), args


def _batch(cfg, n: int = 4) -> dict:
    import torch

    from edgedino.runtime.frames import sample_images
    from edgedino.runtime.preprocess import read_image
    from edgedino.train.run import make_transform

    crops = make_transform(cfg)
    items = [crops(read_image(p), np.random.default_rng(i)) for i, p in enumerate(sample_images()[:n])]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_gram_teacher_wiring_and_high_res_input():
    import torch

    from edgedino.train import distributed
    from edgedino.train.pretrain_step import SSLStep

    base = ["run.batch=4", "model.arch.rope_rescale=null", "gram.start=0", "loss.mask_prob=0.0",
            "gram.teacher_scale=1.0"]
    cfg = load_config(preset_path("tiny-cpu"), base)
    step = SSLStep(cfg, distributed.Dist())
    sched = schedules.at(cfg, 0)
    # Gram teacher = the student's own weights, same input, nothing masked: Gram loss exactly zero
    assert float(step.loss(_batch(cfg), 0, sched)["gram"].detach()) == 0.0
    with torch.no_grad():
        for p in step.student.backbone.parameters():
            p.add_(0.01 * torch.randn_like(p))
    assert float(step.loss(_batch(cfg), 0, sched)["gram"].detach()) > 0
    hr = load_config(preset_path("tiny-cpu"), base + ["gram.teacher_scale=2.0"])
    batch = _batch(hr)
    assert batch["global_hr"].shape[-1] == 2 * batch["global"].shape[-1] == 128
    terms = SSLStep(hr, distributed.Dist()).loss(batch, 0, schedules.at(hr, 0))
    assert 0 < float(terms["gram"].detach()) < 1


def test_init_from_an_earlier_stage(run6):
    from edgedino import load_backbone
    from edgedino.train import distributed
    from edgedino.train.pretrain_step import SSLStep

    cfg = load_config(preset_path("tiny-cpu"), ["gram.weight=2.0", f"init={run6[0] / 'checkpoint.pth'}"])
    step = SSLStep(cfg, distributed.Dist(), init=cfg.init)
    want = load_backbone(run6[0] / "backbone.pth").state_dict()
    for module in (step.student.backbone, step.teacher.backbone, step.gram_teacher):
        assert all(np.array_equal(v, want[k]) for k, v in module.state_dict().items())


def test_tiny_cpu_teacher_targets_tell_images_apart_at_step_0(image_batch):
    """The tiny-cpu teacher's Sinkhorn targets must differ between the 8 photos from the first step.

    With DINOv3's LayerScale 1e-5 every photo got the same CLS (spread 0.000), the balanced targets were exactly
    uniform (entropy 1.0, DINO loss ln K whatever the student does) and the heads learned uniform outputs.
    """
    import torch

    from edgedino.train import distributed
    from edgedino.train.losses import sinkhorn_knopp
    from edgedino.train.pretrain_step import SSLStep

    cfg = load_config(preset_path("tiny-cpu"))
    step = SSLStep(cfg, distributed.Dist())
    with torch.no_grad():
        t = step.teacher.backbone.forward_features(torch.from_numpy(image_batch((64, 64))))
        logits = step.teacher.dino_head(t["cls"])
        targets = sinkhorn_knopp(logits, cfg.loss.teacher_temp_start, cfg.loss.sinkhorn_iterations)
        m = step.monitors(t["cls"], logits, targets, cfg.loss.teacher_temp_start)
    assert float(m["feature_std"]) > 0.3
    assert float(m["target_entropy"]) < 0.95


def test_gram_stage_continues_the_same_run(run6, data, tmp_path):
    """continue_from: student, teacher, AdamW state and step count carry on; a Gram teacher the earlier run did not
    have starts as its teacher."""
    import torch

    from edgedino.train import distributed
    from edgedino.train.loop import restore
    from edgedino.train.optim import build_optimizer
    from edgedino.train.pretrain_step import SSLStep

    earlier = torch.load(run6[0] / "checkpoint.pth", weights_only=True)
    cfg = load_config(preset_path("tiny-cpu"), [f"continue_from={run6[0]}", "gram.start=6", "run.batch=8"])
    step = SSLStep(cfg, distributed.Dist())
    opt = build_optimizer(step.param_groups(), cfg.optim.betas)
    start, loaded = restore(cfg.continue_from, step, opt, optional=tuple(step.modules()))
    step.continued(loaded)
    assert start == 6 and loaded == {"student", "teacher", "gram_teacher"}
    assert all(torch.equal(v, earlier["student"][k]) for k, v in step.student.state_dict().items())
    saved = earlier["optimizer"]["state"]
    assert all(torch.equal(opt.state_dict()["state"][i]["exp_avg"], s["exp_avg"]) for i, s in saved.items())
    step.continued({"student", "teacher"})  # as after a stage-1 run without Gram anchoring
    assert all(torch.equal(v, step.teacher.backbone.state_dict()[k]) for k, v in step.gram_teacher.state_dict().items())
    out = tmp_path / "stage2"
    r = edgedino("pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(out), "--max-steps", "8", *FAST,
                 f"continue_from={run6[0] / 'checkpoint.pth'}", "gram.start=6", "gram.weight=2.0")
    assert r.returncode == 0, r.stderr
    assert [x["step"] for x in losses(out)] == [6, 7]  # the run goes on from where stage 1 stopped
    both = edgedino("pretrain", "--preset", "tiny-cpu", "--data", *data, "--out", str(tmp_path / "x"), *FAST,
                    f"continue_from={run6[0]}", f"init={run6[0]}")
    assert both.returncode == 2 and "give one of them" in both.stderr
