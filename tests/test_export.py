"""Real-size ViT-S/16 and ConvNeXt-T exported to every target x precision this machine can convert,
each artifact run in its real runtime against PyTorch (Core ML: static checks, no runtime on Linux).

The weights are random but perturbed so every block matters (LayerScale 0.3-1.0): with the default
LayerScale of 1e-5 the blocks are muted and int8 errors inside them would never reach the outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgedino.export import THRESHOLDS, export
from edgedino.export.coreml.numeric_check import INTERPRETER
from edgedino.export.parity import compare
from edgedino.export.recipe import load_recipe
from edgedino.export.target import all_targets, get_target
from edgedino.runtime import load

ROOT = Path(__file__).resolve().parents[1]
ALL_PRECISIONS = ["fp32", "fp16", "int8-weights", "int8", "palettize4"]


@pytest.fixture(scope="session", params=["vits16", "convnext_tiny"])
def exported(request, tmp_path_factory, perturb, official_state):
    """Weights as Meta releases them: the official state_dict's exact names (ConvNeXt's norms.3 alias included),
    under a release file name whose hash prefix is checked on load; no --model (inferred)."""
    import hashlib

    import torch

    from edgedino import create_model

    out = tmp_path_factory.mktemp(f"export_{request.param}")
    torch.save(official_state(request.param, perturb(create_model(request.param), seed=0)), out / "w.pth")
    prefix = hashlib.sha256((out / "w.pth").read_bytes()).hexdigest()[:8]
    weights = (out / "w.pth").rename(out / f"dinov3_{request.param}_pretrain_test-{prefix}.pth")
    result = export(targets="all", weights=str(weights), precisions=ALL_PRECISIONS, imgsz=224, calib_size=8,
                    out=out, log=print)
    assert result.model == request.param
    return result, out


def test_every_target_and_precision_is_made(exported):
    result, _ = exported
    made = {(a.target, a.precision) for a in result.artifacts}
    expected = {(t.name, p) for t in all_targets().values() for p in ALL_PRECISIONS if p in t.precisions}
    assert {t for t, _ in expected} == {"onnx", "openvino", "coreml", "tflite"}
    assert made == expected


def test_every_artifact_meets_its_threshold(exported):
    result, _ = exported
    for a in result.artifacts:
        assert a.status in ("ok", "unverified"), (a.target, a.precision, a.status, a.message)
        if a.target == "coreml":  # Linux: the reference interpreter of the ML program gives the parity
            assert a.status == "ok" and {p["runtime"] for p in a.parity} == {INTERPRETER} and a.checks
        parity = {p["output"]: p for p in a.parity}
        assert set(parity) >= {"cls", "patch_tokens"}
        assert parity["patch_tokens"]["cosine_mean"] >= THRESHOLDS[a.precision], a
        print(a.target, a.precision, {k: round(v["cosine_mean"], 5) for k, v in parity.items()})


def test_artifacts_carry_metadata_and_named_outputs(exported):
    result, _ = exported
    for a in result.artifacts:
        if a.target == "coreml":
            from edgedino.runtime.coreml import read_metadata

            meta = read_metadata(a.path)
        else:
            runtime = load(a.path)
            meta = runtime.metadata
            x = np.zeros(runtime.input_shape, runtime.input_dtype)
            outs = runtime.run(x)
            assert {k: list(v.shape) for k, v in outs.items()} == meta["outputs"]
        assert meta["model"] == result.model and meta["precision"] == a.precision and meta["target"] == a.target
        assert get_target(a.target).stored_precision(Path(a.path)) == a.precision, "what verify holds it to"
        assert meta["input"]["shape"] == [1, 3, 224, 224] and meta["converter"]
        assert meta["weights"].startswith(f"dinov3_{result.model}_pretrain_test-")
        assert meta["weights_sha256"].startswith(meta["weights"][-12:-4])
        assert "DINOv3 License" in meta["license"]


def test_quantized_artifacts_are_smaller(exported):
    result, _ = exported
    size = {(a.target, a.precision): a.size_mb for a in result.artifacts}
    for target in ("onnx", "openvino", "tflite"):
        assert size[(target, "int8-weights")] < 0.4 * size[(target, "fp32")]
        assert size[(target, "fp16")] < 0.6 * size[(target, "fp32")]


def test_a_broken_artifact_fails_verification(exported, tmp_path):
    """The check can fail: flip the patch-embedding (stem) weights of a good ONNX file and parity drops."""
    from edgedino.runtime.frames import model_inputs, read_frames

    result, _ = exported
    good = next(a for a in result.artifacts if a.target == "onnx" and a.precision == "fp32")
    model = onnx.load(good.path)
    stem = next(n for n in model.graph.node if n.op_type == "Conv").input[1]
    weight = next(t for t in model.graph.initializer if t.name == stem)
    array = onnx.numpy_helper.to_array(weight)
    weight.CopyFrom(onnx.numpy_helper.from_array(-array[..., ::-1, :].copy(), weight.name))
    onnx.save(model, tmp_path / "broken.onnx")
    inputs = model_inputs(read_frames(None, 2), (224, 224))
    runtime = load(good.path)
    expected = [runtime.run(x[None]) for x in inputs]
    parity = {p.output: p for p in compare(load(tmp_path / "broken.onnx"), inputs, expected)}
    assert parity["patch_tokens"].cosine_mean < THRESHOLDS["fp32"]


def edgedino(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_cli_export_prints_a_table_and_json(tmp_path):
    out = edgedino("export", "--target", "onnx,openvino", "--model", "vit_test", "--imgsz", "64",
                   "--precision", "fp32,int8", "--out", str(tmp_path / "x"), "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith(("onnx ", "openvino "))]
    assert "patch cos" in out.stdout and len(rows) == 4 and all(row.endswith("✅") for row in rows)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] and len(report["artifacts"]) == 4
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "vit_test_64_fp32.bin", "vit_test_64_fp32.onnx", "vit_test_64_fp32.xml",
        "vit_test_64_int8.bin", "vit_test_64_int8.onnx", "vit_test_64_int8.xml"]


def test_uint8_input_with_normalisation_inside(tmp_path):
    result = export(targets=["onnx"], model="vit_test", imgsz=64, input_format="uint8", out=tmp_path, log=print)
    (artifact,) = result.artifacts
    assert artifact.ok and artifact.parity[0]["cosine_mean"] > 0.9999
    runtime = load(artifact.path)
    assert runtime.input_shape == (1, 64, 64, 3) and runtime.input_dtype == np.uint8


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    """A converter that dies half-way (here: after writing part of the file) leaves nothing under out/."""
    from edgedino.export.onnx import OnnxTarget

    def half_written(self, conversion, path):
        path.write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(OnnxTarget, "convert", half_written)
    result = export(targets=["onnx"], model="vit_test", imgsz=64, out=tmp_path, log=print)
    (artifact,) = result.artifacts
    assert artifact.status == "export-failed" and "No space left" in artifact.message and not result.ok
    assert list(tmp_path.iterdir()) == []


def test_onnx_dynamic_batch(tmp_path):
    result = export(targets=["onnx"], model="convnext_test", imgsz=64, dynamic=True, precisions=["fp32", "int8"],
                    out=tmp_path, log=print)
    assert result.ok
    for artifact in result.artifacts:
        runtime = load(artifact.path)
        assert runtime.input_shape[0] == -1 and runtime.metadata["input"]["shape"] == [-1, 3, 64, 64]
        outs = runtime.run(np.zeros((3, 3, 64, 64), np.float32))
        assert outs["patch_tokens"].shape == (3, 2, 2, 128)


@pytest.mark.parametrize("args,message", [
    (["--target", "onnxx"], "unknown target 'onnxx'; did you mean 'onnx'?"),
    (["--precision", "int4"], "unknown precision 'int4'"),
    (["--target", "onnx", "--precision", "palettize4"], "the onnx target cannot export palettize4"),
    (["--calib", "{empty}", "--precision", "int8"], "has no readable images"),
    (["--calib", "{video}", "--precision", "int8"], "cannot read video"),
    (["--imgsz", "100"], "not a multiple of the model's stride 16"),
    (["--out", "{file}"], "is not writable"),
    (["--target", "coreml", "--input-format", "uint8"], "the coreml target cannot take uint8 input"),
    (["--recipe", "{recipe}"], "unknown key 'precisions'"),
])
def test_bad_input_fails_before_any_work(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.jpg").write_bytes(b"no image here")
    (tmp_path / "clip.mp4").write_bytes(b"no video here")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.yaml").write_text("target: onnx\nprecisions: [fp32]\n")
    subs = {"{empty}": str(tmp_path / "empty"), "{video}": str(tmp_path / "clip.mp4"),
            "{file}": str(tmp_path / "afile"), "{recipe}": str(tmp_path / "bad.yaml")}
    args = [subs.get(a, a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    out = edgedino("export", "--model", "vit_test", *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_missing_converter_names_the_extra():
    code = ("import sys; sys.modules['coremltools'] = None\n"
            "from edgedino.export.exporter import plan\n"
            "try:\n    plan(['coreml'], ['fp16'])\nexcept Exception as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "needs coremltools, which is not installed: pip install 'edgedino[export]'" in out.stdout


@pytest.mark.parametrize("recipe", sorted((ROOT / "edgedino" / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_load_and_plan(recipe):
    from edgedino.export.exporter import plan

    settings = load_recipe(recipe)
    pairs = plan(settings["target"], settings["precision"])
    assert pairs and all(p in t.precisions for t, p in pairs)
    assert get_target(settings["target"][0]).name == settings["target"][0]
