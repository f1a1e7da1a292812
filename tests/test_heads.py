"""Heads: trained on real images (OpenCV's handwritten digits; shipped photos composited into shapes with masks),
evaluated on a held-out split against chance, exported with the backbone as one artifact whose logits match
PyTorch in every runtime here, and run live by the torch-free apps."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgedino.errors import EdgeDinoError
from edgedino.export import THRESHOLDS, export
from edgedino.runtime import HeadInfo, load

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "edgedino" / "assets" / "digits.png"  # 40 of each digit from OpenCV's samples/data/digits.png
TEXTURES = ("baboon", "fruits")


@pytest.fixture(scope="module")
def data(tmp_path_factory, image_paths):
    from edgedino.heads import samples

    root = tmp_path_factory.mktemp("head_data")
    samples.digits(DIGITS, root / "digits")
    textures = [p for p in image_paths if p.stem in TEXTURES]
    backgrounds = [p for p in image_paths if p.stem not in TEXTURES]
    samples.composites(backgrounds, textures, root / "shapes", count=60, size=160)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from edgedino.checkpoints import load_backbone, save_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = load_backbone(None, "vit_test").reset_parameters(seed=1)
    return save_backbone(net, tmp_path_factory.mktemp("head_weights") / "vit_test.pt")


def fit(task: str, data_dir: Path, weights: Path, out: Path, kind: str, imgsz: int, steps: int, cache=None):
    from edgedino.checkpoints import load_backbone
    from edgedino.heads import FitConfig, TrainConfig, fit_head

    cfg = FitConfig(task, data_dir, out, kind, imgsz=(imgsz, imgsz), cache_dir=cache, train=TrainConfig(steps=steps))
    return fit_head(cfg, load_backbone(weights), log=print)


@pytest.fixture(scope="module")
def classifier(data, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("classify")
    return fit("classify", data / "digits", weights, out / "digits.pth", "linear", 32, 600, cache=out / "cache")


@pytest.fixture(scope="module")
def segmenter(data, weights, tmp_path_factory):
    return fit("segment", data / "shapes", weights, tmp_path_factory.mktemp("segment") / "shapes.pth", "mlp", 160, 800)


def test_classifier_beats_chance_on_held_out_digits(classifier):
    ev = classifier.evaluation
    print("digits accuracy", ev.score, "chance", ev.chance)
    assert ev.classes == tuple(str(d) for d in range(10)) and ev.images == 80 and classifier.train_images == 320
    assert ev.chance == pytest.approx(0.1) and ev.score >= 0.6
    assert ev.confusion.sum() == 80 and np.trace(ev.confusion) == round(ev.score * 80)
    assert classifier.pictures[0].name == "confusion.png" and classifier.pictures[0].stat().st_size > 5000
    assert not noted(classifier.pictures[0])  # weights from a file: no random-weights note


def noted(png: Path) -> bool:
    """Whether a picture carries the random-weights note: a white band at the bottom with a dark text box at its
    right."""
    import cv2

    img = cv2.imread(str(png))
    return bool((img[-3:, : img.shape[1] // 2] == 255).all() and (img[-30:, -80:] < 100).mean() > 0.2)


def test_segmenter_beats_chance_on_held_out_photos(segmenter):
    ev = segmenter.evaluation
    print("shapes mIoU", ev.score, "chance", ev.chance, "per class", ev.per_class)
    assert ev.classes == ("background", *TEXTURES) and ev.images == 12
    assert ev.score >= ev.chance + 0.15 and min(ev.per_class) > 0.1
    overlays = [p for p in segmenter.pictures if p.name.startswith("overlay_")]
    assert len(overlays) == 8 and all(p.stat().st_size > 10000 and not noted(p) for p in overlays)


def test_head_file_records_backbone_size_task_and_classes(classifier, weights):
    from edgedino.digest import weights_sha256
    from edgedino.heads import load_head

    hf = load_head(classifier.head_path)
    assert hf.head.cfg.task == "classify" and hf.head.cfg.classes == tuple("0123456789")
    assert hf.backbone.model == "vit_test" and hf.backbone.imgsz == (32, 32)
    assert hf.backbone.weights == str(weights.resolve()) and hf.backbone.weights_sha256 == weights_sha256(str(weights))
    assert hf.metrics["score"] == pytest.approx(classifier.evaluation.score)


def test_feature_cache_is_reused(classifier, data, weights, tmp_path, capsys):
    cache = classifier.head_path.parent / "cache"
    again = fit("classify", data / "digits", weights, tmp_path / "again.pth", "linear", 32, 600, cache=cache)
    assert "from the cache" in capsys.readouterr().out
    assert again.evaluation.score == pytest.approx(classifier.evaluation.score)


def test_a_head_refuses_another_backbone(classifier, tmp_path):
    from edgedino.checkpoints import load_backbone, save_backbone
    from edgedino.heads import backbone_for, load_head

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = save_backbone(load_backbone(None, "vit_test").reset_parameters(seed=2), tmp_path / "other.pt")
    with pytest.raises(EdgeDinoError, match="trained on vit_test weights vit_test.pt"):
        backbone_for(load_head(classifier.head_path), weights=str(other))
    with pytest.raises(EdgeDinoError, match="trained on vit_test, not vits16"):
        export(targets="onnx", model="vits16", head=classifier.head_path, out=tmp_path / "x", log=print)
    assert not (tmp_path / "x").exists()


# int8 in every runtime here (where a head's logits can drift from its features' parity), fp32 once per task
HEAD_EXPORTS = {"classify": [(["onnx"], ["fp32", "int8"]), (["openvino", "tflite"], ["int8"])],
                "segment": [(["onnx", "openvino"], ["int8"]), (["tflite"], ["fp32", "int8"])]}


@pytest.fixture(scope="module")
def exported(classifier, segmenter, tmp_path_factory):
    """task -> its exported artifacts (ArtifactResult), 4 each."""
    out = tmp_path_factory.mktemp("head_exports")
    artifacts = {}
    for task, plans in HEAD_EXPORTS.items():
        head, size = (classifier.head_path, 32) if task == "classify" else (segmenter.head_path, 160)
        artifacts[task] = [a for targets, precisions in plans
                           for a in export(targets=targets, precisions=precisions, head=head, calib_size=8,
                                           imgsz=size, out=out / task, log=print).artifacts]
    return artifacts


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_exported_logits_match_pytorch(exported, task):
    assert len(exported[task]) == 4
    for a in exported[task]:
        assert a.status == "ok", (a.target, a.precision, a.message)
        logits = [p for p in a.parity if p["output"] == "logits"]
        assert logits and all(p["cosine_mean"] >= THRESHOLDS[a.precision] for p in logits), (a.target, a.precision)
        assert f"_{task}_" in Path(a.path).name


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_runtime_exposes_logits_and_head(exported, classifier, segmenter, task, image_paths):
    from edgedino.heads import load_head
    from edgedino.runtime.frames import read_frames

    fitted = classifier if task == "classify" else segmenter
    classes = load_head(fitted.head_path).head.cfg.classes
    for a in exported[task]:
        runtime = load(a.path)
        assert runtime.head == HeadInfo(task, classes, "linear" if task == "classify" else "mlp")
        feats = runtime.features(read_frames(None, 3))
        expected = (3, 10) if task == "classify" else (3, 10, 10, 3)
        assert feats.logits.shape == expected and list(runtime.metadata["outputs"]["logits"]) == [1, *expected[1:]]


def test_head_file_runs_in_the_pytorch_runtime(exported, classifier):
    frames = [read_one()] * 2
    runtime = load(classifier.head_path)
    assert runtime.kind == "pytorch" and runtime.head.task == "classify" and runtime.input_hw() == (32, 32)
    onnx = next(a.path for a in exported["classify"] if a.target == "onnx" and a.precision == "fp32")
    np.testing.assert_allclose(runtime.features(frames).logits, load(onnx).features(frames).logits, atol=2e-3)


def test_plain_backbone_has_no_head(exported, tmp_path):
    result = export(targets="onnx", model="vit_test", imgsz=32, out=tmp_path, log=print)
    runtime = load(result.artifacts[0].path)
    assert runtime.head is None and runtime.features(read_one()).logits is None


def read_one() -> np.ndarray:
    from edgedino.runtime.frames import read_frames

    return read_frames(None, 1)[0]


def torch_free_app(script: str, *args) -> subprocess.CompletedProcess:
    """Run an app with torch made unimportable: it must work from the runtime alone."""
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "apps" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=180)


def test_classify_app_headless(exported, data, tmp_path):
    model = next(a.path for a in exported["classify"] if a.target == "onnx" and a.precision == "fp32")
    run = torch_free_app("classify.py", "--model", model, "--source", data / "digits" / "7", "--headless",
                         "--save", tmp_path / "out.mp4", "--json", tmp_path / "labels.jsonl", "--max-frames", 12)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(len(x["labels"]) == 3 for x in lines)
    assert sum(x["labels"][0][0] == "7" for x in lines) >= 6  # mostly training images: the head knows them
    assert (tmp_path / "out.mp4").stat().st_size > 1000 and "FPS end to end" in run.stderr


def test_segment_app_headless(exported, data, tmp_path):
    model = next(a.path for a in exported["segment"] if a.target == "tflite" and a.precision == "int8")
    run = torch_free_app("segment.py", "--model", model, "--source", data / "shapes" / "images", "--headless",
                         "--save", tmp_path / "out.mp4", "--json", tmp_path / "cover.jsonl", "--max-frames", 6)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "cover.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(set(x["coverage"]) <= {"background", *TEXTURES} for x in lines)
    assert all(sum(x["coverage"].values()) == pytest.approx(1, abs=1e-3) for x in lines)
    assert (tmp_path / "out.mp4").stat().st_size > 1000 and "pixels per class" in run.stderr


def test_apps_refuse_an_artifact_without_their_head(exported, data):
    model = exported["classify"][0].path
    run = torch_free_app("segment.py", "--model", model, "--source", data / "shapes" / "images", "--headless")
    assert run.returncode == 2 and "has a classify head" in run.stderr and "--task segment" in run.stderr


def test_cli_trains_on_a_random_backbone_and_exports_it(data, tmp_path, capsys):
    from edgedino.cli import main

    head = tmp_path / "rand.pth"
    assert main(["head", "train", "--task", "classify", "--data", str(data / "digits"), "--model", "vit_test",
                 "--imgsz", "32", "--steps", "200", "--save", str(head)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "chance 0.100" in out and noted(tmp_path / "rand_eval" / "confusion.png")
    assert main(["export", "--head", str(head), "--target", "onnx", "--out", str(tmp_path / "x")]) == 0
    assert "logits cos" in capsys.readouterr().out and (tmp_path / "x" / "vit_test_classify_32_fp32.onnx").exists()


@pytest.mark.parametrize("task, folders, message", [
    ("classify", ["only"], "at least 2"),
    ("classify", ["cat", "dog", "dog/more"], "class folder"),
    ("segment", ["images", "masks"], "no mask for 1 image"),
])
def test_bad_data_is_a_clear_error(tmp_path, task, folders, message, capsys):
    import cv2

    from edgedino.cli import main

    for name in folders:
        (tmp_path / name).mkdir()
    cv2.imwrite(str(tmp_path / folders[0] / "a.png"), np.zeros((16, 16, 3), np.uint8))
    assert main(["head", "train", "--task", task, "--data", str(tmp_path), "--model", "vit_test", "--imgsz", "32",
                 "--save", str(tmp_path / "h.pth")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "h.pth").exists()


def test_mask_with_a_value_outside_the_classes_is_named(data, tmp_path):
    import cv2

    from edgedino.heads.data import read_mask

    cv2.imwrite(str(tmp_path / "m.png"), np.full((8, 8), 7, np.uint8))
    with pytest.raises(EdgeDinoError, match="value 7 is not a class index"):
        read_mask(tmp_path / "m.png", 3)


def test_core_ml_head_is_verified_by_the_reference_interpreter(segmenter, tmp_path):
    result = export(targets="coreml", precisions=["fp32", "int8"], head=segmenter.head_path, calib_size=8,
                    imgsz=160, out=tmp_path, log=print)
    for a in result.artifacts:
        assert a.status == "ok", (a.precision, a.message)
        assert [p for p in a.parity if p["output"] == "logits"]
