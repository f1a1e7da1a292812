"""The shipped demo model: small, labelled as not DINOv3 everywhere it appears, used when no --weights is given,
and (in the committed benchmark) better than random init of the same network on tracking and k-NN."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "amd-epyc-2c" / "demo_weights.json"


def edgedino(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, timeout=300)


def test_demo_model_is_shipped_small_and_labelled():
    from edgedino import load_backbone
    from edgedino.demo import DEMO_WEIGHTS

    assert DEMO_WEIGHTS.is_file() and DEMO_WEIGHTS.stat().st_size <= 10_000_000
    record = json.loads(DEMO_WEIGHTS.with_suffix(".json").read_text())
    assert "NOT DINOv3" in record["what"] and "few hundred images" in record["what"]
    assert record["seed"] == 0 and record["preset"] == "demo-dense" and record["steps"] > 0
    net = load_backbone("demo")  # `--weights demo` anywhere weights are read
    assert net.cfg.name == "demo-vit8" and net.stride == 8 and net.source.path == str(DEMO_WEIGHTS)


def test_without_weights_the_commands_use_the_demo_model(image_paths, tmp_path):
    png = tmp_path / "pca.png"
    r = edgedino("features", str(image_paths[0]), "--out", str(png))
    assert r.returncode == 0, r.stderr
    assert "demo model" in r.stderr and "NOT DINOv3" in r.stderr and png.stat().st_size > 0
    info = edgedino("info")
    assert info.returncode == 0 and "demo-vit8" in info.stdout and "NOT DINOv3" in info.stderr
    license_row = next(line for line in info.stdout.splitlines() if line.startswith("license"))
    assert "demo model" in license_row and "not DINOv3" in license_row  # not the DINOv3 License of Meta's weights
    named = edgedino("info", "--model", "vit_test")  # a model named without weights stays random
    assert named.returncode == 0 and "random weights" in named.stderr and "demo" not in named.stderr


def test_committed_table_shows_the_demo_beating_random_init():
    numbers = json.loads(RESULTS.read_text())
    for key in ("knn_k10", "knn_k20"):
        assert numbers["trained"][key] > numbers["random_init"][key], key
    track = numbers["tracking_synth8"]
    assert track["backbone.pth"]["JF_mean"] > track["demo_init.pth"]["JF_mean"]
