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
