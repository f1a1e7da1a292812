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
