"""Distillation as a user runs it: feature targets, projections and grid alignment, the 2x teacher input, several
students in one run (each exported to ONNX), exact resume, torchrun with 2 processes, and head targets from a
teacher checkpoint written by `edgedino pretrain`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgedino.errors import ConfigError

ENV = dict(os.environ, OMP_NUM_THREADS="1")
FAST = ["run.batch=4", "data.workers=0", "run.log_every=1", "run.checkpoint_every=2"]
STUDENTS = ["--student", "vit_test", "--student", "convnext_test"]


def edgedino(*args: str, module: str = "edgedino", timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def tiny_config(*overrides: str):
    from edgedino.train.distill_config import load_config, preset_path

    return load_config(preset_path("tiny-cpu"), ["run.batch=4", "model.drop_path=0.0", *overrides])


def batch_for(cfg, kind: str, teacher_side: int, n: int = 4) -> dict:
    """Crops of the shipped photos as the loader would stack them."""
    from edgedino.runtime.frames import sample_images
    from edgedino.runtime.preprocess import read_image
    from edgedino.train.distill import make_distill_transform

    crops = make_distill_transform(cfg, kind, teacher_side)
    items = [crops(read_image(p), np.random.default_rng(i)) for i, p in enumerate(sample_images()[:n])]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def feature_step(teacher_net, cfg):
    from edgedino.train import distributed
    from edgedino.train.distill_step import DistillStep
    from edgedino.train.ema import frozen_copy
    from edgedino.train.teacher import Teacher

    return DistillStep(cfg, frozen_copy(Teacher(teacher_net)), "features", distributed.Dist())


@pytest.mark.parametrize("model", ["vit_test", "convnext_test"])
def test_feature_loss_is_zero_for_a_copy_of_the_teacher_and_positive_otherwise(model, perturb):
    from edgedino import create_model
    from edgedino.train import schedules

    cfg = tiny_config(f"distill.students=[{model}]")
    step = feature_step(perturb(create_model(model), 0), cfg)
    step.students.eval()  # no RoPE jitter: the student computes exactly what the frozen teacher computes
    student = step.students.nets[model]
    student.backbone.load_state_dict(step.teacher.backbone.state_dict())
    assert isinstance(student.cls_proj, torch.nn.Identity)  # same width: nothing to learn between them
    batch, sched = batch_for(cfg, "features", 64), schedules.at(cfg, 0)
    terms = {k: float(v.detach()) for k, v in step.loss(batch, 0, sched).items()}
    assert terms[f"{model}.cls"] == pytest.approx(0, abs=1e-6)
    assert terms[f"{model}.patch"] == pytest.approx(0, abs=1e-6)
    with torch.no_grad():
        for p in student.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    terms = {k: float(v.detach()) for k, v in step.loss(batch, 0, sched).items()}
    assert terms[f"{model}.cls"] > 1e-3 and terms[f"{model}.patch"] > 1e-3


@pytest.mark.parametrize(("student", "teacher", "projected"), [
    ("vits16", "vitb16", True), ("vits16", "vitl16", True), ("convnext_tiny", "vitl16", True),
    ("convnext_tiny", "vitb16", False)])
def test_projections_map_each_student_onto_the_teacher_width(student, teacher, projected):
    from edgedino import create_model
    from edgedino.models import get_config
    from edgedino.train.distill_step import FeatureStudent

    width = get_config(teacher).embed_dim
    net = FeatureStudent(create_model(student), width).eval()
    for proj in (net.cls_proj, net.patch_proj):
        if projected:
            assert isinstance(proj, torch.nn.Linear)
            assert (proj.in_features, proj.out_features) == (net.backbone.embed_dim, width)
        else:
            assert isinstance(proj, torch.nn.Identity)
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 64, 64))
    side = 64 // net.backbone.stride
    assert out["cls_p"].shape == (1, width) and out["patches_p"].shape == (1, side, side, width)


def centres(side: int, stride: int, scale: float = 1.0) -> torch.Tensor:
    """(1, side, side, 2) grid whose 'features' are its patch centres in student-image pixels."""
    c = (torch.arange(side, dtype=torch.float32) * stride + stride / 2) / scale
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([y, x], -1)[None]


def test_teacher_grid_is_aligned_to_the_convnext_grid():
    from edgedino.train.losses.feature import align_grid

    student = centres(2, 32)  # ConvNeXt, stride 32, on 64 px
    assert torch.equal(align_grid(centres(4, 16), (2, 2)), student)  # ViT/16 teacher on the same 64 px view
    assert torch.equal(align_grid(centres(8, 16, scale=2), (2, 2)), student)  # the 2x teacher: 128 px view
    assert torch.equal(align_grid(centres(4, 16), (4, 4)), centres(4, 16))  # same grid: untouched
    assert align_grid(torch.randn(2, 3, 3, 5), (2, 2)).shape == (2, 2, 2, 5)  # grids that do not nest: bicubic


def test_the_teacher_really_sees_twice_the_resolution(perturb):
    from edgedino import create_model
    from edgedino.train import schedules
    from edgedino.train.distill import teacher_size

    seen, values = [], {}
    for scale in (1, 2):
        cfg = tiny_config("distill.students=[convnext_test]", f"distill.teacher_scale={scale}")
        step = feature_step(perturb(create_model("vit_test"), 0), cfg)
        hook = step.teacher.backbone.patch_embed  # forward_features runs it first, on the teacher's input
        hook.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
        batch = batch_for(cfg, "features", teacher_size(cfg, 16))
        values[scale] = float(step.loss(batch, 0, schedules.at(cfg, 0))["convnext_test.patch"].detach())
        assert batch["global"].shape[-2:] == (64, 64)
    assert seen == [(64, 64), (128, 128)]  # the teacher's input, per scale; the students' stays 64 px
    assert values[1] != values[2]
    with pytest.raises(ConfigError, match="not a multiple of the teacher's stride 16"):
        teacher_size(tiny_config("distill.teacher_scale=1.1"), 16)


@pytest.fixture(scope="module")
def data(tmp_path_factory, image_paths):
    import shutil

    root = tmp_path_factory.mktemp("photos")
    for p in image_paths:
        shutil.copy(p, root / p.name)
    return str(root)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory, perturb):
    """A ViT/16 of width 96 (neither student's), every block mattering."""
    from edgedino import create_model, save_backbone
    from edgedino.models import ViTConfig

    torch.manual_seed(0)
    net = create_model(ViTConfig(embed_dim=96, depth=2, num_heads=2, ffn_hidden=192, n_registers=0))
    return save_backbone(perturb(net, 1), tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.fixture(scope="module")
def run4(tmp_path_factory, data, teacher_file):
    out = tmp_path_factory.mktemp("run4")
    r = edgedino("distill", "--preset", "tiny-cpu", "--teacher-weights", str(teacher_file), *STUDENTS,
                 "--data", data, "--out", str(out), "--max-steps", "4", *FAST)
    assert r.returncode == 0, r.stderr
    return out, r


def test_several_students_one_run_each_exported(run4, tmp_path):
    from edgedino import load_backbone

    out, r = run4
    assert "feature targets" in r.stderr and "no DINO/iBOT heads" in r.stderr
    rows = records(out)
    assert [x["step"] for x in rows] == [0, 1, 2, 3]
    for key in ("loss", "vit_test.cls", "vit_test.patch", "vit_test.koleo", "convnext_test.cls",
                "convnext_test.patch", "convnext_test.koleo", "feature_std", "images_per_s"):
        assert all(np.isfinite(x[key]) for x in rows), key
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    for name, width in (("vit_test", 64), ("convnext_test", 128)):
        net = load_backbone(out / f"{name}.pth")
        assert net.cfg.name == name and net.embed_dim == width and f"{out / name}.pth" in r.stdout
        ema = {k[len("backbone."):]: v for k, v in ckpt[f"ema.{name}"].items() if k.startswith("backbone.")}
        assert all(torch.equal(v, ema[k]) for k, v in net.state_dict().items())  # the EMA is what is saved
        assert not all(torch.equal(v, ckpt[f"student.{name}"][f"backbone.{k}"]) for k, v in ema.items())
        e = edgedino("export", "--target", "onnx", "--weights", str(out / f"{name}.pth"), "--imgsz", "64",
                     "--out", str(tmp_path / name))
        assert e.returncode == 0, e.stderr
        assert list((tmp_path / name).glob("*.onnx"))


def test_resume_continues_exactly(run4, data, teacher_file, tmp_path):
    head = ["distill", "--preset", "tiny-cpu", "--teacher-weights", str(teacher_file), *STUDENTS, "--data", data,
            "--out", str(tmp_path)]
    first = edgedino(*head, "--max-steps", "2", *FAST)
    assert first.returncode == 0, first.stderr
    resumed = edgedino(*head, "--max-steps", "4", *FAST, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = records(run4[0]), records(tmp_path)
    assert [x["step"] for x in b] == [0, 1, 2, 3]
    for ra, rb in zip(a, b, strict=True):
        for key in ("loss", "vit_test.cls", "vit_test.patch", "convnext_test.patch", "convnext_test.koleo"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-6, rel=0), (ra["step"], key)
    for name in ("vit_test", "convnext_test"):
        want = torch.load(run4[0] / f"{name}.pth", weights_only=True)["state_dict"]
        got = torch.load(tmp_path / f"{name}.pth", weights_only=True)["state_dict"]
        assert all(torch.allclose(got[k], v, atol=1e-6) for k, v in want.items())
    other = edgedino(*head, "--max-steps", "4", *FAST, "distill.teacher_scale=2", "--resume")
    assert other.returncode == 2 and "distill.teacher_scale" in other.stderr


def test_two_processes_equal_one_with_twice_the_batch(data, teacher_file, tmp_path):
    """ConvNeXt student: no RoPE jitter, no drop path, so nothing random differs between the runs; KoLeo searches
    each process's images (official), so the single process searches the same halves."""
    args = ["distill", "--preset", "tiny-cpu", "--teacher-weights", str(teacher_file), "--student", "convnext_test",
            "--data", data, "--max-steps", "2", *FAST, "loss.koleo_group=2"]  # KoLeo per process: groups of 2
    one = edgedino(*args, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29547", "-m", "edgedino.train", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert two.returncode == 0, two.stderr
    assert (tmp_path / "two" / "convnext_test.pth").exists()
    for ra, rb in zip(records(tmp_path / "one"), records(tmp_path / "two"), strict=True):
        for key in ("loss", "convnext_test.cls", "convnext_test.patch", "convnext_test.koleo"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-5), (ra["step"], key)


def test_head_targets_from_a_pretraining_checkpoint(data, tmp_path):
    pre = edgedino("pretrain", "--preset", "tiny-cpu", "--data", data, "--out", str(tmp_path / "pre"),
                   "--max-steps", "1", "run.batch=4", "data.workers=0", "run.checkpoint_every=1")
    assert pre.returncode == 0, pre.stderr
    ckpt = tmp_path / "pre" / "checkpoint.pth"
    r = edgedino("distill", "--preset", "tiny-cpu", "--teacher-weights", str(ckpt), *STUDENTS, "--data", data,
                 "--out", str(tmp_path / "d"), "--max-steps", "2", *FAST, "distill.teacher_scale=2")
    assert r.returncode == 0, r.stderr
    assert "DINO/iBOT heads" in r.stderr
    rows = records(tmp_path / "d")
    for key in ("vit_test.dino", "vit_test.ibot", "vit_test.koleo", "convnext_test.dino", "convnext_test.ibot",
                "teacher_entropy"):  # ConvNeXt students get the iBOT patch loss too (they are not masked)
        assert all(np.isfinite(x[key]) for x in rows), key
    assert all(x["vit_test.dino"] > 0 for x in rows)
    forced = edgedino("distill", "--preset", "tiny-cpu", "--teacher-weights", str(tmp_path / "pre" / "backbone.pth"),
                      "--data", data, "--out", str(tmp_path / "f"), "--max-steps", "1", *FAST,
                      "distill.targets=heads")
    assert forced.returncode == 2 and "no DINO head" in forced.stderr


def test_head_targets_in_process_unmasked_students_and_ibot_for_convnext(perturb):
    """Official distillation: the students see every patch (no mask token), the DINO loss leaves out the same-view
    global pairs, and iBOT scores the mask-drawn patches for ViT and ConvNeXt students alike."""
    from edgedino import create_model
    from edgedino.train import distributed, schedules
    from edgedino.train.distill_step import DistillStep
    from edgedino.train.ema import frozen_copy
    from edgedino.train.projection_heads import DINOHead, HeadShape
    from edgedino.train.teacher import Teacher

    cfg = tiny_config("distill.students=[vit_test, convnext_test]")
    torch.manual_seed(0)
    teacher = frozen_copy(Teacher(perturb(create_model("vit_test"), 0), DINOHead(64, HeadShape(32, 48, 16, 3)),
                                  DINOHead(64, HeadShape(24, 40, 8, 2))))
    step = DistillStep(cfg, teacher, "heads", distributed.Dist())
    assert step.terms == ["vit_test.dino", "vit_test.ibot", "vit_test.koleo",
                          "convnext_test.dino", "convnext_test.ibot", "convnext_test.koleo"]
    vit = step.students.nets["vit_test"]
    assert vit.dino_head.last_layer.weight.shape == (32, 16) and vit.ibot_head.last_layer.weight.shape == (24, 8)
    seen = []
    for net in step.students.nets.values():
        original = net.backbone.forward_features
        net.backbone.forward_features = lambda x, masks=None, local=False, f=original: (seen.append(masks), f(
            x, masks=masks, local=local))[1]
    batch = batch_for(cfg, "heads", 64)
    terms = step.loss(batch, 3, schedules.at(cfg, 3))
    assert seen and all(m is None for m in seen)  # no student is masked
    picks = step.picks(3, 4, batch["global"].flatten(0, 1))
    assert picks["convnext_test"].shape == (8, 4) and picks["vit_test"].shape == (8, 16)
    assert 0 < int(picks["vit_test"].sum()) < picks["vit_test"].numel()
    for key in ("vit_test.ibot", "convnext_test.ibot", "vit_test.dino"):
        assert torch.isfinite(terms[key]) and terms[key] > 0, key
    terms["loss"].backward()
    assert step.students.nets["convnext_test"].ibot_head.last_layer.weight.grad.abs().sum() > 0


def test_bad_input_fails_before_writing(data, teacher_file, tmp_path):
    out = tmp_path / "run"
    for args, message in ((["--student", "vit_test", "--student", "vit_test"], "named twice"),
                          (["--student", "nope"], "unknown model 'nope'"),
                          (["crops.global_size=48", "--student", "convnext_test"], "stride 32"),
                          (["distill.targets=maybe"], "distill.targets"),
                          (["--resume"], "nothing to resume")):
        r = edgedino("distill", "--preset", "tiny-cpu", "--teacher-weights", str(teacher_file), "--data", data,
                     "--out", str(out), *FAST, *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert not out.exists(), args
