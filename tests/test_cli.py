"""The command line as a user runs it: real processes, real exit codes, real files."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgedino import create_model, save_backbone


def edgedino(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_help_lists_commands_and_each_has_examples():
    top = edgedino("--help")
    assert top.returncode == 0 and "info" in top.stdout and "features" in top.stdout
    for command in ("info", "features"):
        out = edgedino(command, "--help")
        assert out.returncode == 0 and "examples:" in out.stdout, command


def test_help_does_not_import_torch():
    code = "import sys; sys.modules['torch'] = None; from edgedino.cli import build_parser; build_parser()"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.fixture(scope="module")
def hf_convnext(tmp_path_factory):
    return save_backbone(create_model("convnext_tiny").reset_parameters(seed=2),
                         tmp_path_factory.mktemp("w") / "hf", "hf")


def test_info_names_the_preset_of_an_hf_folder(hf_convnext):
    out = edgedino("info", "--weights", str(hf_convnext), "--imgsz", "224x320")
    assert out.returncode == 0, out.stderr
    assert "convnext_tiny (inferred from the weights' shapes)" in out.stdout
    assert "(hf layout)" in out.stdout
    assert "output patch_tokens  (1, 7, 10, 768)" in out.stdout
    assert "DINOv3 License" in out.stdout


def test_info_random_weights_says_so():
    out = edgedino("info", "--model", "vit_test")
    assert out.returncode == 0 and "random weights" in out.stderr and "none (random init, seed 0)" in out.stdout


def test_random_weights_are_seeded_so_their_export_verifies(tmp_path):
    """The README's own flow: export with no --weights, then verify the artifact (the seed is in its metadata)."""
    out = edgedino("export", "--target", "onnx", "--model", "vit_test", "--imgsz", "64", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    artifact = tmp_path / "vit_test_64_fp32.onnx"
    verified = edgedino("verify", str(artifact))
    assert verified.returncode == 0 and "random weights (seed 0)" in verified.stderr, verified.stderr
    info = edgedino("info", "--weights", str(artifact))
    assert info.returncode == 0 and "random (seed 0)" in info.stdout and "onnxruntime" in info.stdout, info.stderr
    assert "output patch_tokens  (1, 4, 4, 64)" in info.stdout


def test_features_and_eval_run_an_exported_artifact(image_paths, tmp_path):
    assert edgedino("export", "--target", "onnx", "--model", "vit_test", "--imgsz", "64",
                    "--out", str(tmp_path)).returncode == 0
    artifact = str(tmp_path / "vit_test_64_fp32.onnx")
    out = edgedino("features", str(image_paths[0]), "--weights", artifact, "--save", str(tmp_path / "pca.png"))
    assert out.returncode == 0 and "at 64x64 -> 4x4 patches of 64 dims" in out.stdout, out.stderr
    assert cv2.imread(str(tmp_path / "pca.png")).shape[0] == 64  # image and PCA side by side, at the artifact size
    for i, p in enumerate(image_paths[:6]):
        (tmp_path / "data" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / f"c{i % 2}" / p.name).write_bytes(p.read_bytes())
    out = edgedino("eval", "knn", "--data", str(tmp_path / "data"), "--weights", artifact, "--imgsz", "64")
    assert out.returncode == 0 and "top1_k10" in out.stdout, out.stderr
    out = edgedino("export", "--target", "onnx", "--weights", artifact, "--out", str(tmp_path / "again"))
    assert out.returncode == 2 and "is an exported artifact, not weights" in out.stderr


def test_features_writes_a_pca_picture(image_paths, tmp_path):
    out_png = tmp_path / "pca.png"
    out = edgedino("features", str(image_paths[0]), "--model", "vit_test", "--imgsz", "224", "--save", str(out_png))
    assert out.returncode == 0, out.stderr
    picture = cv2.imread(str(out_png))
    assert picture is not None and picture.shape[0] == 224
    right = picture[:, picture.shape[1] // 2 + 8:]
    assert right.std() > 20, "the PCA half has colour structure"
    assert "patches" in out.stdout


@pytest.mark.parametrize("args,message", [
    (["info", "--weights", "/no/such.pth"], "weights not found: /no/such.pth"),
    (["info", "--model", "vit_huge"], "unknown model 'vit_huge'"),
    (["info", "--model", "convnext_test", "--imgsz", "100"], "not a multiple of the model's stride 32"),
    (["info", "--model", "vit_test", "--imgsz", "big"], "is not N or HxW"),
    (["features", "/no/such.jpg", "--model", "vit_test"], "image not found: /no/such.jpg"),
    (["features", "{bad_image}", "--model", "vit_test"], "cannot read"),
    (["features", "{image}", "--model", "vit_test", "--imgsz", "100x128"], "not a multiple of the model's stride 16"),
    (["info", "--weights", "{text}"], "not a PyTorch checkpoint"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, image_paths, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.pth").write_text("just text")
    subs = {"{bad_image}": str(tmp_path / "bad.jpg"), "{image}": str(image_paths[0]),
            "{text}": str(tmp_path / "notes.pth")}
    out = edgedino(*[subs.get(a, a) for a in args], cwd=tmp_path)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "pca.png").exists(), "nothing half-written"


def test_pca_picture_follows_the_image_content():
    from edgedino.viz import pca_rgb

    tokens = np.zeros((4, 6, 8), np.float32)
    tokens[:, :3, 0] = 5.0  # left half differs from right half along one direction
    tokens += np.random.default_rng(0).normal(0, 0.01, tokens.shape)
    rgb = pca_rgb(tokens)
    assert abs(int(rgb[:, :3, 0].mean()) - int(rgb[:, 3:, 0].mean())) > 100
