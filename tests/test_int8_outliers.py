"""int8 on weights with DINOv3-like outliers, exported for real and run in each target's runtime (Core ML: the
reference interpreter), checked on the held-out images: plain int8 fails closed, the auto policy keeps the most
sensitive layers float and passes on every target. Tiny presets on every target, ViT-S/16 on TFLite."""

from __future__ import annotations

import json

import pytest

from edgedino import save_backbone
from edgedino.bench.stress_weights import stress_weights
from edgedino.export import THRESHOLDS, export
from edgedino.runtime import load

TARGETS = ["onnx", "openvino", "tflite", "coreml"]


def _parity(artifact) -> dict[str, float]:
    return {p["output"]: p["cosine_mean"] for p in artifact.parity}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """vit_test and convnext_test with severity-10 outliers, as weights files."""
    folder = tmp_path_factory.mktemp("stress")
    return {name: str(save_backbone(stress_weights(name, 10.0, size=64), folder / f"{name}.pt", "edgedino"))
            for name in ("vit_test", "convnext_test")}


@pytest.fixture(scope="session")
def tiny_auto(tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("auto")
    return export(targets=TARGETS, weights=tiny_weights["vit_test"], precisions=["int8"], imgsz=64, out=out,
                  log=print), out


def test_auto_passes_on_every_target_and_says_which_layers_stayed_float(tiny_auto):
    result, out = tiny_auto
    assert result.verify_images == 8 and "holdout" in result.verify_set and result.calib_images == 8
    for a in result.artifacts:
        parity = _parity(a)
        assert a.status == "ok", (a.target, a.message)
        assert min(parity["cls"], parity["patch_tokens"]) >= THRESHOLDS["int8"], (a.target, parity)
        assert a.tries and a.tries[-1]["float_layers"] == len(a.float_layers)
        meta = load(a.path).metadata if a.target != "coreml" else _coreml_metadata(a.path)
        assert meta["quantization"] == {"policy": "auto", "float_layers": a.float_layers, "smoothquant_alpha": 0.5}
    kept = {a.target: a.float_layers for a in result.artifacts}
    assert kept["tflite"] and all(".fc2" in layer or ".proj" in layer for layer in kept["tflite"][:2])
    report = json.loads(json.dumps(result.to_dict()))
    assert any(a["float_layers"] for a in report["artifacts"]) and report["sensitivity"]


def _coreml_metadata(path):
    from edgedino.runtime.coreml import read_metadata

    return read_metadata(path)


def test_strict_fails_closed_where_auto_passes(tiny_weights, tiny_auto, tmp_path):
    result = export(targets=["tflite"], weights=tiny_weights["vit_test"], precisions=["int8"], imgsz=64,
                    out=tmp_path, log=print, int8_policy="strict")
    (artifact,) = result.artifacts
    assert artifact.status == "verify-failed" and not result.ok and artifact.float_layers == []
    assert min(_parity(artifact)["cls"], _parity(artifact)["patch_tokens"]) < THRESHOLDS["int8"]
    assert "below the int8 threshold" in artifact.message


def test_coreml_palettize4_and_int8_keep_float_layers_uncompressed(tiny_weights, tmp_path):
    result = export(targets=["coreml"], weights=tiny_weights["convnext_test"], precisions=["int8", "palettize4"],
                    imgsz=64, out=tmp_path, log=print)
    for a in result.artifacts:
        parity = _parity(a)
        assert a.status == "ok" and min(parity["cls"], parity["patch_tokens"]) >= THRESHOLDS[a.precision], a
        if a.float_layers:
            assert any("of layers kept in float" in check for check in a.checks)


def _cli(*args, cwd=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


def test_cli_report_prints_the_sensitivity_and_names_the_verification_set(tiny_weights, tmp_path):
    from edgedino.runtime.frames import HOLDOUT

    out = _cli("export", "--target", "onnx", "--weights", tiny_weights["vit_test"], "--imgsz", "64",
               "--precision", "int8", "--int8-policy", "report", "--verify-images", str(HOLDOUT),
               "--out", str(tmp_path / "x"), "--json", str(tmp_path / "r.json"))
    assert out.returncode in (0, 1), out.stderr
    assert f"parity on 8 images: {HOLDOUT}" in out.stdout and "int8 policy report" in out.stdout
    table = out.stdout.split("sensitivity: cosine with PyTorch when only this layer is quantized")[1].splitlines()
    layers = [line.split()[0] for line in table[2:] if line.strip()]
    per_block = ("attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc1", "mlp.fc2")  # the deploy form's layers
    assert sorted(layers) == sorted(["patch_embed.proj"] + [f"blocks.{b}.{n}" for b in (0, 1) for n in per_block])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["int8_policy"] == "report" and report["artifacts"][0]["float_layers"] == []


@pytest.mark.parametrize("args,message", [
    (["--int8-policy", "fast"], "invalid choice: 'fast'"),
    (["--verify-images", "{empty}"], "has no readable images"),
])
def test_bad_policy_or_verification_images_fail_before_any_work(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "{empty}" else a for a in args]
    out = _cli("export", "--model", "vit_test", "--imgsz", "64", "--precision", "int8", *args,
               "--out", str(tmp_path / "out"))
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


REAL_SIZE = 112  # the ViT-S/16 architecture as it is; a smaller input keeps the test quick (7x7 patches)


@pytest.fixture(scope="session")
def vits16_stressed(tmp_path_factory):
    """ViT-S/16 with severity-3 outliers (3x the DINOv3-like magnitudes), as a weights file."""
    path = tmp_path_factory.mktemp("vits16_stress") / "vits16_stress3.pt"
    return str(save_backbone(stress_weights("vits16", 3.0, size=REAL_SIZE), path, "edgedino"))


def test_vits16_plain_int8_fails_and_auto_holds_on_tflite(vits16_stressed, tmp_path):
    """Real model: without SmoothQuant and the policy (int8 as edgedino made it before) TFLite falls below 0.99
    on the held-out images; auto brings cls and patch tokens back above it."""
    plain = export(targets=["tflite"], weights=vits16_stressed, precisions=["int8"], imgsz=REAL_SIZE,
                   out=tmp_path / "plain", log=print, int8_policy="strict", smoothquant=None).artifacts[0]
    auto = export(targets=["tflite"], weights=vits16_stressed, precisions=["int8"], imgsz=REAL_SIZE,
                  out=tmp_path / "auto", log=print).artifacts[0]
    assert plain.status == "verify-failed" and min(_parity(plain)["cls"], _parity(plain)["patch_tokens"]) < 0.99
    assert auto.status == "ok" and min(_parity(auto)["cls"], _parity(auto)["patch_tokens"]) >= 0.99
    assert 0 < len(auto.float_layers) < 49 // 2
