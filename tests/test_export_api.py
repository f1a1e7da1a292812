"""`edgedino.export.export` takes a Backbone object as well as a preset or a file: the object goes through the same
plan, convert, check, verify and publish steps, and gives the artifact that exporting its weights from a file gives."""

from __future__ import annotations

import pytest
import torch

from edgedino.errors import EdgeDinoError


def test_export_of_a_backbone_object_equals_export_of_its_saved_weights(tmp_path):
    from edgedino import create_model, save_backbone
    from edgedino.export import export
    from edgedino.runtime import load

    model = create_model("vit_test").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from_object = export(targets="onnx", model=model, imgsz=64, out=tmp_path / "object", log=lambda line: None)
    saved = save_backbone(model, tmp_path / "weights" / "vit_test.pt")
    from_file = export(targets="onnx", weights=str(saved), imgsz=64, out=tmp_path / "file", log=lambda line: None)
    (a,), (b,) = from_object.artifacts, from_file.artifacts
    assert a.status == b.status == "ok" and a.ok, (a.message, b.message)  # verified against PyTorch, as any export
    ra, rb = load(a.path), load(b.path)
    assert ra.metadata == rb.metadata and ra.metadata["weights"] == "vit_test.pt"  # the same weights' SHA-256
    assert not ra.random_weights
    image = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (64, 64, 3), generator=image, dtype=torch.uint8).numpy()
    fa, fb = ra.features(frame), rb.features(frame)
    assert (fa.cls == fb.cls).all() and (fa.patch_tokens == fb.patch_tokens).all()
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched


def test_export_refuses_other_objects_and_mixed_weights(tmp_path):
    from edgedino import create_model
    from edgedino.export import export

    with pytest.raises(EdgeDinoError, match="preset name or an edgedino Backbone, not a Linear"):
        export(targets="onnx", model=torch.nn.Linear(2, 2), out=tmp_path / "x", log=lambda line: None)
    with pytest.raises(EdgeDinoError, match="carries its own weights"):
        export(targets="onnx", model=create_model("vit_test"), weights="w.pt", out=tmp_path / "x",
               log=lambda line: None)
    assert not (tmp_path / "x").exists()


def test_the_package_is_the_function_and_reads_its_first_argument_as_model_does(tmp_path):
    """`edgedino.export(x, target=, precision=)`: a Backbone, a preset name or a weights file; the package's own
    names (and `from edgedino.export import export`) stay as they were."""
    import edgedino
    from edgedino import create_model, save_backbone
    from edgedino.runtime import load

    assert {"list_models", "create_model", "load_backbone", "export"} <= set(dir(edgedino))
    quiet = dict(imgsz=64, log=lambda line: None)
    model = create_model("vit_test")
    saved = save_backbone(model, tmp_path / "w" / "vit_test.pt")
    by_object = edgedino.export(model, target="onnx", precision="fp32", out=tmp_path / "object", **quiet)
    by_file = edgedino.export(str(saved), target="onnx", precision="fp32", out=tmp_path / "file", **quiet)
    by_preset = edgedino.export("vit_test", target="onnx", precision="fp32", out=tmp_path / "preset", **quiet)
    (a,), (b,), (c,) = by_object.artifacts, by_file.artifacts, by_preset.artifacts
    assert a.ok and b.ok and c.ok, (a.message, b.message, c.message)
    assert load(a.path).metadata == load(b.path).metadata  # the file was read as weights, not as a preset name
    assert load(c.path).random_weights and not load(b.path).random_weights
    with pytest.raises(EdgeDinoError, match="no_such.pt"):  # a missing file is named, not taken for a preset
        edgedino.export(str(tmp_path / "no_such.pt"), target="onnx", out=tmp_path / "missing", **quiet)
    assert not (tmp_path / "missing").exists()
    assert callable(edgedino.export.export) and edgedino.export.PRECISIONS


def test_a_deployed_backbone_is_refused_with_the_reason_not_a_missing_key(tmp_path):
    from edgedino import create_model, save_backbone
    from edgedino.export import export

    model = create_model("vit_test").deploy((64, 64))
    with pytest.raises(EdgeDinoError, match=r"deployed for \(64, 64\).*before deploy\(\)"):
        export(targets="onnx", model=model, imgsz=64, out=tmp_path / "x", log=lambda line: None)
    with pytest.raises(EdgeDinoError, match="before deploy"):
        save_backbone(model, tmp_path / "w.pt")
    assert not (tmp_path / "x").exists() and not (tmp_path / "w.pt").exists()
