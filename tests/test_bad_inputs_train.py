"""Bad input to the training commands, the files they read and the apps, as a table: each row is an invocation
(and the files it is given) -> exit status, one error line matching a pattern, no traceback, and nothing left
behind (the scratch folder is byte for byte what the row's setup made). Grow the table with every new case."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACK = ROOT / "apps" / "track.py"
ENV = dict(os.environ, OMP_NUM_THREADS="1")


@dataclass
class Case:
    argv: list[str]  # `edgedino` arguments, or apps/track.py's when the first item is "track"; {w} {data} {model} ...
    code: int
    message: str  # regex the one error line must match
    setup: Callable[[Path], None] | None = None


def write(name: str, text: str) -> Callable[[Path], None]:
    return lambda w: (w / name).write_text(text)


def nan_backbone(name: str, model: str = "vit_test", arch: dict | None = None) -> Callable[[Path], None]:
    """A backbone file whose weights are NaN (a diverged run's)."""

    def setup(w: Path) -> None:
        from dataclasses import replace

        import torch

        from edgedino import create_model, save_backbone
        from edgedino.models import get_config

        net = create_model(replace(get_config(model), name="custom", **(arch or {})))
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(float("nan"))
        save_backbone(net, w / name)

    return setup


def hf_config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A Hugging Face folder of vit_test whose config.json is edited by `change` (which returns the new JSON)."""

    def setup(w: Path) -> None:
        from edgedino import create_model, save_backbone

        save_backbone(create_model("vit_test"), w / "hf", layout="hf")
        cfg = json.loads((w / "hf" / "config.json").read_text())
        (w / "hf" / "config.json").write_text(json.dumps(change(cfg)))

    return setup


def edit(**values) -> Callable[[dict], dict]:
    return lambda cfg: {**cfg, **values}


def head_file(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A real head file for vit_test, its payload then edited by `change`."""

    def setup(w: Path) -> None:
        import torch

        from edgedino import create_model
        from edgedino.heads.head import Head, HeadConfig
        from edgedino.heads.store import BackboneRecord, save_head

        head = Head(HeadConfig("classify", "linear", 64, ("a", "b")))
        save_head(w / "head.pth", head, BackboneRecord.of(create_model("vit_test"), (112, 112), 0), {})
        payload = torch.load(w / "head.pth", weights_only=True)
        change(payload)
        torch.save(payload, w / "head.pth")

    return setup


def davis_with_a_small_mask(w: Path) -> None:
    """One generated DAVIS sequence whose third annotation is half the frames' size."""
    import cv2

    from edgedino.track.palette import read_indexed_png, write_indexed_png
    from edgedino.track.synth import SynthConfig, write_dataset

    write_dataset(w / "davis", 1, SynthConfig(frames=4, size=(112, 160), objects=1))
    ann = next((w / "davis" / "Annotations" / "480p").iterdir()) / "00002.png"
    write_indexed_png(ann, cv2.resize(read_indexed_png(ann), (80, 56), interpolation=cv2.INTER_NEAREST))


def wide_mask(w: Path) -> None:
    """A first-frame mask of another shape than the clip's 320x240 frames."""
    import numpy as np

    from edgedino.track.palette import write_indexed_png

    mask = np.zeros((100, 320), np.uint8)
    mask[20:60, 40:120] = 1
    write_indexed_png(w / "wide.png", mask)


PRETRAIN = ["pretrain", "--preset", "tiny-cpu", "--data", "{data}", "--out", "{w}/run"]
DISTILL = ["distill", "--preset", "tiny-cpu", "--student", "vit_test", "--data", "{data}", "--out", "{w}/run"]
HEAD = ["export", "--head", "{w}/head.pth", "--target", "onnx", "--imgsz", "112", "--out", "{w}/x"]
TRACK_ARGS = ["track", "--model", "{model}", "--source", "{clip}", "--headless", "--box", "10,10,40,40"]
TINY_ARCH = {"embed_dim": 128, "depth": 4, "num_heads": 4, "ffn_hidden": 512, "patch_size": 8, "layerscale_init": 1.0}

CASES: dict[str, Case] = {
    # numeric settings out of range, wrong types, unknown keys (pretraining)
    "lr-nan": Case(PRETRAIN + ["optim.lr=nan"], 2, r"optim\.lr=nan: must be a finite number >= 0"),
    "lr-inf": Case(PRETRAIN + ["optim.lr=.inf"], 2, r"optim\.lr=inf: must be a finite number >= 0"),
    "lr-negative": Case(PRETRAIN + ["optim.lr=-1"], 2, r"optim\.lr=-1\.0: must be a finite number >= 0"),
    "lr-list": Case(PRETRAIN + ["optim.lr=[1,2]"], 2, r"optim\.lr=\[1, 2\]: must be a finite number"),
    "lr-bool": Case(PRETRAIN + ["optim.lr=true"], 2, r"optim\.lr=True: must be a finite number"),
    "lr-all-zero": Case(PRETRAIN + ["optim.lr=0", "optim.min_lr=0"], 2, r"optim\.lr=0 and optim\.min_lr=0: .*nothing"),
    "koleo-group-1": Case(PRETRAIN + ["loss.koleo_group=1"], 2, r"loss\.koleo_group=1: a KoLeo group needs at least 2"),
    "resolution-weights-0": Case(PRETRAIN + ["crops.resolutions=[[64,32,0]]"], 2,
                                 r"crops\.resolutions=.*the weights must not all be 0"),
    "resolution-row-short": Case(PRETRAIN + ["crops.resolutions=[[64,32]]"], 2,
                                 r"crops\.resolutions=\[64, 32\]: must be 3 numbers"),
    "parallel-unknown": Case(PRETRAIN + ["run.parallel=zero3"], 2, r"run\.parallel='zero3': use one of ddp, fsdp"),
    "teacher-temp-0": Case(PRETRAIN + ["loss.teacher_temp=0"], 2, r"loss\.teacher_temp=0\.0: must be .*> 0"),
    "student-temp-negative": Case(PRETRAIN + ["loss.student_temp=-0.1"], 2, r"loss\.student_temp=-0\.1"),
    "out-dim-0": Case(PRETRAIN + ["heads.dino.out_dim=0"], 2, r"heads\.dino\.out_dim=0: must be an integer >= 2"),
    "sinkhorn-0": Case(PRETRAIN + ["loss.sinkhorn_iterations=0"], 2, r"loss\.sinkhorn_iterations=0: .*>= 1"),
    "momentum-above-1": Case(PRETRAIN + ["ema.momentum=1.5"], 2, r"ema\.momentum=1\.5: .*in \[0, 1\]"),
    "mask-ratio-reversed": Case(PRETRAIN + ["loss.mask_ratio=[0.5,0.1]"], 2, r"loss\.mask_ratio=.*low <= high"),
    "batch-0": Case(PRETRAIN + ["run.batch=0"], 2, r"run\.batch=0: must be an integer >= 1"),
    "batch-1-with-koleo": Case(PRETRAIN + ["run.batch=1"], 2, r"run\.batch=1: KoLeo"),
    "batch-float": Case(PRETRAIN + ["run.batch=2.5"], 2, r"run\.batch needs a int, got 2\.5"),
    "workers-negative": Case(PRETRAIN + ["data.workers=-1"], 2, r"data\.workers=-1: must be an integer >= 0"),
    "seed-negative": Case(PRETRAIN + ["run.seed=-1"], 2, r"run\.seed=-1: must be an integer in \[0, 4294967295\]"),
    "amp-unknown": Case(PRETRAIN + ["run.amp=fp8"], 2, r"run\.amp='fp8': use one of auto, bf16, fp32"),
    "crops-negative": Case(PRETRAIN + ["crops.n_local=-1"], 2, r"crops\.n_local=-1: must be an integer >= 0"),
    "crops-unknown-key": Case(PRETRAIN + ["crops.zoom=2"], 2, r"unknown config key 'crops\.zoom'"),
    "arch-unknown-key": Case(PRETRAIN + ["model.arch.foo=1"], 2, r"unknown config key 'model\.arch\.foo'"),
    "arch-3-heads": Case(PRETRAIN + ["model.arch.num_heads=3"], 2, r"num_heads 3 must give a whole head width"),
    "arch-0-heads": Case(PRETRAIN + ["model.arch.num_heads=0"], 2, r"num_heads=0 must be an integer >= 1"),
    "model-unknown": Case(PRETRAIN + ["model.name=vitz"], 2, r"unknown model 'vitz'"),
    "max-steps-0": Case(PRETRAIN + ["--max-steps", "0"], 2, r"argument --max-steps: must be at least 1, got 0"),
    "max-steps-negative": Case(PRETRAIN + ["--max-steps", "-3"], 2, r"argument --max-steps: must be at least 1"),
    # config files and the files a run starts from
    "yaml-malformed": Case(["pretrain", "--config", "{w}/bad.yaml", "--data", "{data}", "--out", "{w}/run"], 2,
                           r"bad\.yaml is not valid YAML", write("bad.yaml", "model: {name: [vits16\n")),
    "yaml-python-tag": Case(["pretrain", "--config", "{w}/tag.yaml", "--data", "{data}", "--out", "{w}/run"], 2,
                            r"tag\.yaml is not valid YAML .*python/object",
                            write("tag.yaml", "model: !!python/object/apply:os.system ['touch PWNED']\n")),
    "yaml-list": Case(["pretrain", "--config", "{w}/list.yaml", "--data", "{data}", "--out", "{w}/run"], 2,
                      r"list\.yaml: a config file must be a YAML mapping", write("list.yaml", "- 1\n- 2\n")),
    "out-is-a-file": Case(PRETRAIN, 2, r"--out .*run is a file, not a folder", write("run", "the user's notes\n")),
    "init-nan": Case(PRETRAIN + ["init={w}/nan.pth"], 2, r"init=.*nan\.pth has non-finite weights",
                     nan_backbone("nan.pth", "vit_test", TINY_ARCH)),
    # distillation
    "distill-max-steps-0": Case(DISTILL + ["--max-steps", "0"], 2, r"argument --max-steps: must be at least 1"),
    "distill-lr-nan": Case(DISTILL + ["optim.lr=nan"], 2, r"optim\.lr=nan: must be a finite number >= 0"),
    "distill-scale-0": Case(DISTILL + ["distill.teacher_scale=0"], 2, r"distill\.teacher_scale=0\.0: .*> 0"),
    "distill-weight-negative": Case(DISTILL + ["distill.cosine=-1"], 2, r"distill\.cosine=-1\.0: .*>= 0"),
    "distill-targets": Case(DISTILL + ["distill.targets=logits"], 2, r"distill\.targets='logits': use one of"),
    "distill-nan-teacher": Case(DISTILL + ["--teacher-weights", "{w}/teacher.pth"], 2,
                                r"the teacher .*teacher\.pth has non-finite weights", nan_backbone("teacher.pth")),
    # Hugging Face config.json
    "hf-rope-negative": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json .*rope_base=-5 must be > 0",
                             hf_config(edit(rope_theta=-5))),
    "hf-list": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json holds list", hf_config(lambda c: [c])),
    "hf-null": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json holds NoneType", hf_config(lambda c: None)),
    "hf-0-heads": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json .*num_heads=0",
                       hf_config(edit(num_attention_heads=0))),
    "hf-3-heads": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json .*num_heads 3",
                       hf_config(edit(num_attention_heads=3))),
    "hf-wrong-type": Case(["info", "--weights", "{w}/hf"], 2, r"config\.json .*embed_dim='wide'",
                          hf_config(edit(hidden_size="wide"))),
    # head files
    "head-missing-keys": Case(HEAD, 2, r"head\.pth is a damaged head file \(KeyError",
                              head_file(lambda p: p.pop("state_dict"))),
    "head-huge-dim": Case(HEAD, 2, r"head\.pth is a damaged head file .*size mismatch",
                          head_file(lambda p: p.update(dim=10**9))),
    "head-wrong-types": Case(HEAD, 2, r"head\.pth is a damaged head file .*classes must be a list",
                             head_file(lambda p: p.update(classes="ab"))),
    "head-bad-record": Case(HEAD, 2, r"head\.pth is a damaged head file .*backbone record",
                            head_file(lambda p: p["backbone"].update(weights=7))),
    # DAVIS annotations
    "davis-mask-size": Case(["benchmark", "tracking", "--data", "{w}/davis", "--model", "{model}", "--short-side",
                             "112"], 2, r"00002\.png is 80x56, but the frames .* are 160x112",
                            davis_with_a_small_mask),
    # the apps
    "track-timeout-0": Case(TRACK_ARGS + ["--timeout", "0"], 2, r"argument --timeout: must be .*> 0, got 0"),
    "track-timeout-negative": Case(TRACK_ARGS + ["--timeout", "-1"], 2, r"argument --timeout: must be .*got -1"),
    "track-timeout-nan": Case(TRACK_ARGS + ["--timeout", "nan"], 2, r"argument --timeout: must be .*got nan"),
    "track-max-frames-negative": Case(TRACK_ARGS + ["--max-frames", "-1"], 2, r"--max-frames: must be at least 1"),
    "track-max-frames-0": Case(TRACK_ARGS + ["--max-frames", "0"], 2, r"--max-frames: must be at least 1, got 0"),
    "track-threads-0": Case(TRACK_ARGS + ["--threads", "0"], 2, r"--threads: must be at least 1, got 0"),
    "track-retries-negative": Case(TRACK_ARGS + ["--retries", "-1"], 2, r"--retries: must be at least 0"),
    "track-mask-shape": Case(["track", "--model", "{model}", "--source", "{clip}", "--headless", "--mask",
                              "{w}/wide.png"], 2, r"wide\.png is 320x100, the frames are 320x240: .*another shape",
                             wide_mask),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """What the rows refer to: training images, a vit_test ONNX artifact at 112 px and a 320x240 clip."""
    import cv2

    from edgedino.export import export
    from edgedino.track.synth import SynthConfig, make_sequence

    root = tmp_path_factory.mktemp("bad_inputs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export(targets=["onnx"], model="vit_test", imgsz=112, out=root, log=lambda m: None)
    assert result.ok
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for frame in make_sequence(SynthConfig(frames=6))[0]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return {"data": str(ROOT / "edgedino" / "assets"), "model": str(result.artifacts[0].path),
            "clip": str(root / "clip.mp4")}


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with a hash of its contents (folders as 'dir')."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def run(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr): the apps in their own process (an abort must show), `edgedino` in this one (its main()
    is what the console script calls; an exception it lets through fails the test as a traceback would)."""
    if argv[0] == "track":
        done = subprocess.run([sys.executable, str(TRACK), *argv[1:]], capture_output=True, text=True, env=ENV,
                              timeout=300)
        return done.returncode, done.stderr
    from edgedino.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, files, tmp_path, capsys):
    case = CASES[name]
    w = tmp_path / "w"
    w.mkdir()
    if case.setup:
        case.setup(w)
    before = snapshot(w)
    code, stderr = run([a.format(w=w, **files) for a in case.argv], capsys)
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr
    assert code == case.code, (code, stderr)
    assert len(errors) == 1 and re.search(case.message, errors[0]), stderr
    assert snapshot(w) == before, "the command left something behind or changed the user's files"


def test_track_gives_up_on_a_slow_source_without_aborting(files):
    """A timeout shorter than opening the video: the app gives up (or stops mid-way) with its documented status,
    never with SIGABRT from a reader thread still inside OpenCV at exit (twice: the abort depended on timing)."""
    for _ in range(2):
        done = subprocess.run([sys.executable, str(TRACK), "--model", files["model"], "--source", files["clip"],
                               "--headless", "--box", "10,10,40,40", "--timeout", "0.0001"], capture_output=True,
                              text=True, env=ENV, timeout=120)
        assert done.returncode in (1, 2) and "terminate called" not in done.stderr, (done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "no frame from" in done.stderr, done.stderr


def test_track_scales_a_smaller_mask_of_the_frame_shape_and_says_so(files, tmp_path):
    import numpy as np

    from edgedino.track.palette import write_indexed_png

    mask = np.zeros((120, 160), np.uint8)
    mask[10:40, 20:60] = 1
    write_indexed_png(tmp_path / "half.png", mask)
    done = subprocess.run([sys.executable, str(TRACK), "--model", files["model"], "--source", files["clip"],
                           "--headless", "--mask", str(tmp_path / "half.png"), "--max-frames", "2",
                           "--json", str(tmp_path / "t.jsonl")], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "half.png is 160x120, the frames are 320x240: the mask is scaled to the frame" in done.stderr
    first = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])["objects"][0]
    assert first["box"] == [40, 20, 80, 60]  # the mask's box, doubled


def test_every_numeric_setting_has_a_range():
    """A numeric setting added to the training configs without a row in RANGES would be checked only for being
    finite: every one must have its range."""
    from dataclasses import fields

    from edgedino.train.augment import MultiCropConfig
    from edgedino.train.distill_config import DistillConfig
    from edgedino.train.ranges import RANGES, _leaves

    numeric = {key for key, _, default in _leaves(DistillConfig())
               if isinstance(default, (int, float, tuple)) and not isinstance(default, bool)}
    numeric |= {f"crops.{f.name}" for f in fields(MultiCropConfig) if not isinstance(f.default, bool)}
    assert numeric - set(RANGES) == set() and set(RANGES) - numeric == set()
