"""Official DINOv3 files as users hold them, checked against the key lists of the official code (tests/data/
official_keys.json, made from facebookresearch/dinov3's own state_dict()), never against edgedino's own writer:
released backbones (ConvNeXt's `norms.3` alias included), release-name hash prefixes, training checkpoints with
their DINO/iBOT heads (teacher_checkpoint.pth, sharded DCP folders from a real FSDP2 run, and their dcp_to_torch_save
conversion)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgedino import create_model, load_backbone, save_backbone
from edgedino.checkpoints import check_keys, official_state_dict, read_teacher
from edgedino.errors import CheckpointError
from edgedino.models import get_family, match_preset
from edgedino.models.infer import infer_config
from edgedino.train.projection_heads import HeadShape
from edgedino.train.teacher import read_heads

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_KEYS = json.loads((ROOT / "tests" / "data" / "official_keys.json").read_text())["presets"]
PRESET = {"vitl16_sat493m": "vitl16"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def meta_state(key: str) -> dict[str, torch.Tensor]:
    """The official key list as meta tensors (no memory), with the real RoPE periods the shapes cannot carry."""
    sd = {name: torch.empty(shape, device="meta") for name, shape in OFFICIAL_KEYS[key]}
    if "rope_embed.periods" in sd:
        n = sd["rope_embed.periods"].shape[0]
        sd["rope_embed.periods"] = 100.0 ** (torch.arange(n, dtype=torch.float64) * 4 / (4 * n))
    return sd


@pytest.mark.parametrize("key", list(OFFICIAL_KEYS))
def test_official_key_list_both_ways(key):
    """Every preset: the official state_dict's names infer the preset, and the official layout we write has
    exactly the official names, shapes and order (so the official code loads it with strict=True)."""
    sd = meta_state(key)
    cfg = infer_config(sd)
    cfg = match_preset(cfg) if cfg.name == "custom" else cfg
    assert cfg.name == PRESET.get(key, key)
    assert getattr(cfg, "local_cls_norm", False) == (key == "vitl16_sat493m")
    with torch.device("meta"):
        net = create_model(cfg)
    ours = [[k, list(v.shape)] for k, v in official_state_dict(net).items()]
    assert ours == OFFICIAL_KEYS[key]
    loadable = {k: v for k, v in sd.items() if k not in get_family(cfg.family).aliases}
    check_keys(net, loadable)  # loading: nothing missing, nothing extra, every shape right
    with pytest.raises(CheckpointError, match="unexpected key 'extra.weight'"):
        check_keys(net, {**loadable, "extra.weight": torch.empty(1, device="meta")})


@pytest.mark.parametrize("preset", ["vits16", "convnext_tiny"])
def test_official_file_loads_without_model_and_round_trips_exactly(preset, official_state, perturb, tmp_path):
    original = official_state(preset, perturb(create_model(preset), seed=3))
    torch.save(original, tmp_path / "official.pth")
    net = load_backbone(tmp_path / "official.pth")
    assert net.cfg.name == preset and net.source.layout == "official"
    written = torch.load(save_backbone(net, tmp_path / "again.pth", "official"), weights_only=True)
    assert list(written) == list(original)
    assert all(torch.equal(written[k], original[k]) for k in original)


def test_convnext_alias_copies_must_agree(official_state, tmp_path):
    sd = official_state("convnext_tiny", create_model("convnext_tiny"))
    sd["norms.3.weight"] = sd["norms.3.weight"] + 1
    torch.save(sd, tmp_path / "edited.pth")
    with pytest.raises(CheckpointError, match=r"'norms.3.weight' and 'norm.weight' differ"):
        load_backbone(tmp_path / "edited.pth")
    r = cli("info", "--weights", str(tmp_path / "edited.pth"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "'norms.3.weight' and 'norm.weight' differ" in r.stderr


def release_named(path: Path, stem: str, wrong: bool = False) -> Path:
    """The file renamed as Meta names releases: <stem>-<first 8 hex digits of its SHA-256>.pth."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    if wrong:
        digest = f"{(int(digest, 16) + 1) % 16**8:08x}"
    return path.rename(path.parent / f"{stem}-{digest}.pth")


def test_release_name_hash_is_checked_and_said(official_state, tmp_path):
    torch.save(official_state("convnext_tiny", create_model("convnext_tiny")), tmp_path / "w.pth")
    good = release_named(tmp_path / "w.pth", "dinov3_convnext_tiny_pretrain_lvd1689m")
    net = load_backbone(good)
    assert net.source.hash_checked == good.stem[-8:]
    r = cli("info", "--weights", str(good))
    assert r.returncode == 0 and f"SHA-256 starts with {good.stem[-8:]}" in r.stdout, r.stderr
    bad = release_named(good, "dinov3_convnext_tiny_pretrain_lvd1689m", wrong=True)
    r = cli("info", "--weights", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "incomplete or not the released one" in r.stderr
    other = bad.rename(tmp_path / "backbone-00001000.pth")  # not a release name: no hash claimed, none checked
    assert load_backbone(other).source.hash_checked is None


def test_local_cls_norm_is_training_only_and_for_local_crops(perturb, tmp_path):
    """As the official ViT-L/16 SAT-493M: the preset loads with --model, and the local norm only touches local
    crops' CLS + registers in training."""
    from dataclasses import replace

    cfg = replace(create_model("vit_test").cfg, local_cls_norm=True, rope_rescale=None)  # no train-time jitter
    model = perturb(create_model(cfg), seed=1)
    with torch.no_grad():
        model.local_cls_norm.weight.mul_(3.0)
    path = save_backbone(model, tmp_path / "sat.pth", "official")
    assert load_backbone(path, "vit_test").cfg.local_cls_norm
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model.forward_features(x, local=True)["cls"], model.forward_features(x)["cls"])
        model.train()
        local, glob = model.forward_features(x, local=True), model.forward_features(x)
    assert not torch.allclose(local["cls"], glob["cls"]) and not torch.allclose(local["registers"], glob["registers"])
    assert torch.equal(local["patch_tokens"], glob["patch_tokens"])


def heads_state(in_dim: int, dino: HeadShape, ibot: HeadShape, seed: int) -> dict[str, torch.Tensor]:
    """Official-layout DINO and iBOT head tensors (mlp.N, last_layer) with their own sizes."""
    from edgedino.train.projection_heads import DINOHead

    torch.manual_seed(seed)
    return ({f"dino_head.{k}": v for k, v in DINOHead(in_dim, dino).state_dict().items()}
            | {f"ibot_head.{k}": v for k, v in DINOHead(in_dim, ibot).state_dict().items()})


DINO, IBOT = HeadShape(48, 40, 16, 3), HeadShape(24, 32, 8, 2)  # unequal, as in the 7B recipe


def test_teacher_checkpoint_brings_its_heads_with_their_own_sizes_and_maths(perturb, tmp_path):
    backbone = perturb(create_model("vit_test"), seed=2)
    teacher = {f"backbone.{k}": v for k, v in official_state_dict(backbone).items()} | heads_state(64, DINO, IBOT, 0)
    torch.save({"teacher": teacher}, tmp_path / "teacher_checkpoint.pth")
    net = load_backbone(tmp_path / "teacher_checkpoint.pth")
    assert net.source.layout == "official-training"
    dino, ibot = read_heads(tmp_path / "teacher_checkpoint.pth", 64)
    assert (dino.shape, ibot.shape) == (DINO, IBOT)
    assert not dino.norm_last_layer and not ibot.norm_last_layer  # the official head's free last layer
    assert torch.equal(dino.last_layer.weight, teacher["dino_head.last_layer.weight"])


@pytest.fixture(scope="module")
def fsdp_checkpoint(tmp_path_factory):
    """A sharded DCP checkpoint written by 2 processes with FSDP2, laid out as an official training run's."""
    out = tmp_path_factory.mktemp("fsdp") / "ckpt" / "99"
    script = ROOT / "tests" / "helpers" / "save_fsdp_checkpoint.py"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                        str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, torch.load(str(out) + ".teacher.pt", weights_only=True)


def test_sharded_checkpoint_folder_loads_the_teacher(fsdp_checkpoint):
    folder, teacher = fsdp_checkpoint
    assert {p.name for p in folder.glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}
    net = load_backbone(folder)
    assert net.source.layout == "official-dcp" and net.cfg.name == "vit_test"
    assert all(torch.equal(v, teacher[f"backbone.{k}"]) for k, v in net.state_dict().items())
    dino, ibot = read_heads(folder, 64)
    assert (dino.shape, ibot.shape) == (DINO, IBOT)
    assert torch.equal(ibot.last_layer.weight, teacher["ibot_head.last_layer.weight"])


def test_converted_sharded_checkpoint_loads_the_same(fsdp_checkpoint, tmp_path):
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    folder, teacher = fsdp_checkpoint
    dcp_to_torch_save(folder, tmp_path / "consolidated.pth")
    net = load_backbone(tmp_path / "consolidated.pth")
    assert net.source.layout == "official-training"
    assert all(torch.equal(v, teacher[f"backbone.{k}"]) for k, v in net.state_dict().items())
    sd, config = read_teacher(tmp_path / "consolidated.pth", ("ibot_head.",))
    assert config is None and all(torch.equal(v, teacher[k]) for k, v in sd.items()) and sd


def test_sharded_checkpoint_with_a_missing_shard_is_one_line(fsdp_checkpoint, tmp_path):
    import shutil

    folder, _ = fsdp_checkpoint
    broken = shutil.copytree(folder, tmp_path / "broken")
    (broken / "__1_0.distcp").unlink()
    r = cli("info", "--weights", str(broken))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "incomplete: __1_0.distcp is missing" in r.stderr


def test_dcp_metadata_that_would_run_code_is_refused(tmp_path, monkeypatch):
    import os
    import pickle

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / ".metadata").write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(CheckpointError, match="refused"):
        load_backbone(tmp_path / "ckpt")
    assert not (tmp_path / "pwned").exists()


def test_distillation_from_an_official_training_checkpoint_with_unequal_heads(perturb, tmp_path):
    """The students' heads are sized from the teacher's matching heads: DINO from DINO, iBOT from iBOT."""
    from edgedino.train.distill_config import load_config, preset_path

    backbone = perturb(create_model("vit_test"), seed=4)
    teacher = {f"backbone.{k}": v for k, v in official_state_dict(backbone).items()} | heads_state(64, DINO, IBOT, 1)
    torch.save({"teacher": teacher}, tmp_path / "teacher_checkpoint.pth")
    data = ROOT / "edgedino" / "assets"
    out = tmp_path / "run"
    r = cli("distill", "--preset", "tiny-cpu", "--teacher-weights", str(tmp_path / "teacher_checkpoint.pth"),
            "--student", "vit_test", "--data", str(data), "--out", str(out), "--max-steps", "2", "run.batch=4",
            "data.workers=0", "run.log_every=1", "run.checkpoint_every=2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "targets: the teacher's DINO/iBOT heads" in r.stderr
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    student = state["student.vit_test"]
    assert student["dino_head.last_layer.weight"].shape == (DINO.out_dim, DINO.bottleneck)
    assert student["ibot_head.last_layer.weight"].shape == (IBOT.out_dim, IBOT.bottleneck)
    assert student["ibot_head.mlp.0.weight"].shape == (IBOT.hidden, 64)
    assert load_config(preset_path("tiny-cpu")).heads.dino.out_dim not in (DINO.out_dim, IBOT.out_dim)
