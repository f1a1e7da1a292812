"""`edgedino verify` on an artifact exported with a task head: the logits are compared too, with the head file found
by its recorded name (or given with --head) and refused when it is not the one the artifact was exported with."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from edgedino import create_model
from edgedino.cli import main
from edgedino.export import export
from edgedino.export.metadata import head_sha256
from edgedino.heads import BackboneRecord, Head, HeadConfig, save_head
from edgedino.runtime import load

ARTIFACT = "vit_test_classify_32_fp32.onnx"


def make_head(backbone, path, seed: int):
    """A classify head with random weights and non-trivial standardisation, saved for `backbone` at 32x32."""
    torch.manual_seed(seed)
    head = Head(HeadConfig("classify", "linear", backbone.embed_dim, ("a", "b", "c")))
    with torch.no_grad():
        head.std.uniform_(0.05, 0.2)
    return save_head(path, head, BackboneRecord.of(backbone, (32, 32), None), {})


@pytest.fixture(scope="module")
def exported(tmp_path_factory, perturb):
    """(folder with the weights w.pt and head head.pth, the exported ONNX artifact in folder/exp)."""
    from edgedino.checkpoints import load_backbone, save_backbone

    root = tmp_path_factory.mktemp("verify_head")
    weights = save_backbone(perturb(create_model("vit_test").reset_parameters(0), 0), root / "w.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone(str(weights))
    make_head(backbone, root / "head.pth", seed=0)
    make_head(backbone, root / "other.pth", seed=1)
    (result,) = export("onnx", weights=str(weights), precisions=["fp32"], imgsz=32, head=str(root / "head.pth"),
                       out=root / "exp", log=lambda line: None).artifacts
    assert result.status == "ok", result.message
    return root, root / "exp" / ARTIFACT


def test_metadata_records_the_head_file(exported):
    root, artifact = exported
    head = load(artifact).metadata["head"]
    assert (head["task"], head["file"], head["sha256"]) == ("classify", "head.pth", head_sha256(root / "head.pth"))


def test_verify_compares_the_logits_with_the_recorded_head(exported, monkeypatch, capsys, tmp_path):
    root, artifact = exported
    monkeypatch.chdir(root)  # weights and head found by their recorded names in the current folder
    assert main(["verify", str(artifact), "--json", str(tmp_path / "v.json")]) == 0
    captured = capsys.readouterr()
    assert "logits cos" in captured.out and f"task head from {root / 'head.pth'}" in captured.err
    (result,) = json.loads((tmp_path / "v.json").read_text())["artifacts"]
    logits = [p for p in result["parity"] if p["output"] == "logits"]
    assert len(logits) == 1 and logits[0]["cosine_mean"] > 0.9999


def test_verify_refuses_another_head(exported, monkeypatch, capsys, tmp_path):
    root, artifact = exported
    monkeypatch.chdir(root)
    assert main(["verify", str(artifact), "--head", str(root / "other.pth")]) == 2
    assert f"{root / 'other.pth'} is not the head file {ARTIFACT} was exported with" in capsys.readouterr().err
    copy = tmp_path / ARTIFACT
    shutil.copy(artifact, copy)
    shutil.copy(root / "other.pth", tmp_path / "head.pth")  # the recorded name next to the artifact, other content
    assert main(["verify", str(copy)]) == 2
    assert "is not the head file" in capsys.readouterr().err


def test_verify_asks_for_a_missing_head(exported, monkeypatch, capsys, tmp_path):
    root, artifact = exported
    monkeypatch.chdir(tmp_path)
    assert main(["verify", str(artifact), "--weights", str(root / "w.pt")]) == 2
    assert "was exported with head.pth, not found in" in capsys.readouterr().err


def test_verify_refuses_a_head_for_a_plain_backbone(exported, capsys):
    root, _ = exported
    export("onnx", weights=str(root / "w.pt"), precisions=["fp32"], imgsz=32, out=root / "plain",
           log=lambda line: None)
    plain = root / "plain" / "vit_test_32_fp32.onnx"
    assert main(["verify", str(plain), "--weights", str(root / "w.pt"), "--head", str(root / "head.pth")]) == 2
    assert "has no task head" in capsys.readouterr().err
