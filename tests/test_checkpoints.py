"""Every checkpoint layout loads, round trips are exact, and bad weights fail with a clear message."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from edgedino import create_model, load_backbone, save_backbone
from edgedino.checkpoints import RandomWeightsWarning
from edgedino.errors import CheckpointError

SUFFIX = {"official": ".pth", "edgedino": ".pt", "hf": ""}


def same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def vits16():
    return create_model("vits16").reset_parameters(seed=1)


@pytest.mark.parametrize("name", ["vit_test", "vit_test_swiglu", "convnext_test"])
def test_round_trip_through_every_layout(name, tmp_path):
    model = create_model(name).reset_parameters(seed=0)
    current = model
    for i, layout in enumerate(["official", "hf", "edgedino", "hf", "official"]):
        path = save_backbone(current, tmp_path / f"{i}_{layout}{SUFFIX[layout]}", layout)
        current = load_backbone(path)
        assert current.cfg.name == name and current.source.layout == layout
        assert same_tensors(model, current), f"tensors changed after {layout}"


@pytest.mark.parametrize("layout", ["official", "hf"])
def test_real_size_preset_is_inferred_without_model(vits16, layout, tmp_path):
    loaded = load_backbone(save_backbone(vits16, tmp_path / f"w{SUFFIX[layout]}", layout))
    assert loaded.cfg.name == "vits16"
    assert same_tensors(vits16, loaded)


def test_hf_safetensors_without_config_takes_heads_from_the_preset(vits16, tmp_path):
    folder = save_backbone(vits16, tmp_path / "hf", "hf")
    (folder / "config.json").unlink()
    loaded = load_backbone(folder / "model.safetensors")
    assert loaded.cfg.name == "vits16" and loaded.cfg.num_heads == 6
    assert same_tensors(vits16, loaded)


def test_hf_keys_with_the_newer_model_prefix(tmp_path):
    """transformers 5 names the encoder `model.layer.N`; older files say `layer.N`. Both load."""
    from safetensors.torch import load_file, save_file

    model = create_model("vit_test").reset_parameters(seed=3)
    folder = save_backbone(model, tmp_path / "hf", "hf")
    sd = load_file(folder / "model.safetensors")
    save_file({("model." + k if k.startswith("layer.") else k): v for k, v in sd.items()},
              folder / "model.safetensors")
    assert same_tensors(model, load_backbone(folder))


def test_official_training_checkpoint_ignores_heads(tmp_path):
    model = create_model("vit_test").reset_parameters(seed=4)
    teacher = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    teacher["dino_head.mlp.0.weight"] = torch.randn(8, 64)
    path = tmp_path / "training.pth"
    torch.save({"teacher": teacher, "iteration": 10}, path)
    loaded = load_backbone(path)
    assert loaded.source.layout == "official-training" and same_tensors(model, loaded)


def test_random_init_warns(recwarn):
    load_backbone(None, "vit_test")
    assert any(issubclass(w.category, RandomWeightsWarning) for w in recwarn.list)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"cls_token": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_backbone(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content,match", [
    (b"hello, I am not a checkpoint\n", "not a PyTorch checkpoint"),
    (b"", "not a PyTorch checkpoint"),
])
def test_file_that_is_not_a_checkpoint(tmp_path, content, match):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_backbone(path)


def test_missing_path():
    with pytest.raises(CheckpointError, match="weights not found: /no/such/file.pth"):
        load_backbone("/no/such/file.pth")


def test_folder_without_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not a Hugging Face model folder"):
        load_backbone(tmp_path)


def test_weights_of_another_family(tmp_path):
    path = save_backbone(create_model("convnext_test"), tmp_path / "c.pth", "official")
    with pytest.raises(CheckpointError, match="ConvNeXt checkpoint, but the model vits16 is a vit"):
        load_backbone(path, "vits16")


def test_weights_of_another_size_name_the_key_and_shapes(vits16, tmp_path):
    path = save_backbone(vits16, tmp_path / "s.pth", "official")
    with pytest.raises(CheckpointError, match=r"'cls_token' has shape \(1, 1, 384\) in the weights but "
                                              r"\(1, 1, 768\) in vitb16"):
        load_backbone(path, "vitb16")


def test_missing_and_unexpected_keys(tmp_path):
    sd = create_model("vit_test").state_dict()
    torch.save({k: v for k, v in sd.items() if k != "blocks.1.norm2.bias"}, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="'blocks.1.norm2.bias' of vit_test is missing"):
        load_backbone(tmp_path / "missing.pth", "vit_test")
    torch.save({**sd, "blocks.0.extra": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected key 'blocks.0.extra'"):
        load_backbone(tmp_path / "extra.pth", "vit_test")


def test_not_a_dinov3_state_dict(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a DINOv3 backbone"):
        load_backbone(tmp_path / "other.pth")


def test_bad_hf_config(tmp_path):
    folder = save_backbone(create_model("vit_test"), tmp_path / "hf", "hf")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "vit"}))
    with pytest.raises(CheckpointError, match="model_type 'vit'"):
        load_backbone(folder)


def test_failed_save_leaves_nothing(tmp_path):
    from dataclasses import replace

    model = create_model(replace(create_model("vit_test").cfg, untie_cls_norm=True))
    with pytest.raises(CheckpointError, match="cls_norm"):
        save_backbone(model, tmp_path / "hf", "hf")
    assert list(tmp_path.iterdir()) == []


def test_untied_norms_of_larger_official_models_load(tmp_path):
    """The official ViT can untie the CLS norm (untie_cls_and_patch_norms; no release uses it) and has a
    training-only local CLS norm (ViT-L/16 SAT-493M, 7B). Both are official keys."""
    from dataclasses import replace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        cfg = replace(create_model("vit_test").cfg, untie_cls_norm=True, local_cls_norm=True)
    model = create_model(cfg).reset_parameters(seed=5)
    loaded = load_backbone(save_backbone(model, tmp_path / "u.pth", "official"))
    assert loaded.cfg.untie_cls_norm and loaded.cfg.local_cls_norm and same_tensors(model, loaded)


def test_config_json_claiming_a_huge_model_fails_before_allocating(tmp_path):
    """A small folder whose config.json says 48 blocks of width 8192 (about 40 GB of fp32) is refused on the
    shapes, checked on a meta-device model, before any memory is spent."""
    import resource

    folder = save_backbone(create_model("vit_test"), tmp_path / "hf", "hf")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "hidden_size": 8192, "num_hidden_layers": 48,
                                                    "num_attention_heads": 64, "intermediate_size": 32768}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="do not fit"):
        load_backbone(folder)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1_000_000  # KiB: under 1 GB more
