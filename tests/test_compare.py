"""`edgedino compare A B`: real artifacts and checkpoints run against each other on the shipped photos."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """vit_test (seeded random weights) as ONNX and OpenVINO at 64 px and ONNX at 112 px; the same weights and other
    weights as checkpoints."""
    from edgedino.checkpoints import load_backbone, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = export(targets=["onnx", "openvino"], model="vit_test", imgsz=64, out=out, verify_outputs=False,
                       log=lambda m: None)
        big = export(targets=["onnx"], model="vit_test", imgsz=112, out=out / "big", verify_outputs=False,
                     log=lambda m: None)
        same = save_backbone(load_backbone(None, "vit_test"), out / "same.pth")
        other = save_backbone(load_backbone(None, "vit_test", seed=123), out / "other.pth")
    paths = {Path(a.path).suffix: Path(a.path) for a in small.artifacts}
    return {"onnx": paths[".onnx"], "openvino": paths[".xml"], "onnx112": Path(big.artifacts[0].path),
            "same": same, "other": other}


def test_same_model_in_two_runtimes_agrees(models, tmp_path, capsys):
    from edgedino.cli import main

    out = tmp_path / "c.json"
    assert main(["compare", str(models["openvino"]), str(models["onnx"]), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "(openvino) against" in table and "patch_tokens" in table
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1 and report["imgsz"] == [64, 64] and report["images"] == 8
    parity = {p["output"]: p for p in report["parity"]}
    assert {"cls", "patch_tokens"} <= set(parity) and all(p["cosine_min"] > 0.999 for p in parity.values())


def test_a_checkpoint_against_an_artifact_tells_same_from_other_weights(models, tmp_path):
    from edgedino.cli import main

    cos = {}
    for name in ("same", "other"):
        out = tmp_path / f"{name}.json"
        assert main(["compare", str(models["onnx"]), str(models[name]), "--json", str(out)]) == 0
        cos[name] = {p["output"]: p["cosine_mean"] for p in json.loads(out.read_text())["parity"]}
    assert cos["same"]["patch_tokens"] > 0.9999 and cos["other"]["patch_tokens"] < 0.9


def test_models_of_other_sizes_are_refused(models, tmp_path, capsys):
    from edgedino.cli import main

    out = tmp_path / "c.json"
    assert main(["compare", str(models["onnx"]), str(models["onnx112"]), "--json", str(out)]) == 2
    assert "patch grids differ" in capsys.readouterr().err and not out.exists()
