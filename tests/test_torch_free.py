"""The device side without PyTorch: a fresh venv with only the wheel's `edgedino[runtime]` installed imports
edgedino.runtime and edgedino.track, runs ONNX, OpenVINO and TFLite artifacts exported here, runs the installed apps
(edgedino-track, python -m edgedino.apps.features) and finds the shipped recipes by name."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the fresh venv: load every artifact, compare its features with the main venv's, follow an object.
DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import edgedino, edgedino.runtime, edgedino.track
    from edgedino.runtime import load
    from edgedino.runtime.frames import read_frames
    from edgedino.track import Tracker

    frames = read_frames(None, 2)
    reference = np.load(sys.argv[1])
    report = {"edgedino": edgedino.__file__, "kinds": []}
    for path in sys.argv[2:]:
        runtime = load(path, threads=1)
        feats = runtime.features(frames)
        np.testing.assert_allclose(feats.patch_tokens, reference[runtime.kind], atol=1e-4)
        report["kinds"].append(runtime.kind)
    tracker = Tracker(runtime)
    mask = np.zeros(frames[0].shape[:2], np.uint8)
    mask[40:120, 60:160] = 1
    tracker.start(frames[0], mask)
    report["objects"] = len(tracker.step(frames[0]).objects)
    report["torch_loaded"] = "torch" in sys.modules
    print(json.dumps(report))
""")


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> Path:
    """A new venv with `pip install -c constraints.txt edgedino-*.whl[runtime]` (the tested versions), the wheel
    built from a copy of the installable files (so the checkout gets no build/ folder); its python."""
    root = tmp_path_factory.mktemp("torch_free")
    src = root / "src"
    shutil.copytree(ROOT / "edgedino", src / "edgedino", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    wheel = subprocess.run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                            str(root / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    (whl,) = (root / "dist").glob("edgedino-*.whl")
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                          f"{whl}[runtime]"], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return python


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> list[Path]:
    """vit_test at 112x112 as ONNX, OpenVINO and TFLite, exported by this (torch) venv."""
    from edgedino.export import export

    out = tmp_path_factory.mktemp("torch_free_artifacts")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export(targets=["onnx", "openvino", "tflite"], model="vit_test", imgsz=112, out=out,
                        log=lambda m: None)
    assert result.ok
    return [Path(a.path) for a in result.artifacts]


def test_device_side_runs_without_torch(device_venv, artifacts, tmp_path):
    import cv2

    from edgedino.runtime import load
    from edgedino.runtime.frames import read_frames

    no_torch = subprocess.run([str(device_venv), "-c", "import torch"], capture_output=True, text=True, timeout=60)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    frames = read_frames(None, 2)
    reference = {(rt := load(p, threads=1)).kind: rt.features(frames).patch_tokens for p in artifacts}
    assert set(reference) == {"onnxruntime", "openvino", "litert"}
    np.savez(tmp_path / "reference.npz", **reference)
    (tmp_path / "device.py").write_text(DEVICE_SCRIPT)
    run = subprocess.run([str(device_venv), str(tmp_path / "device.py"), str(tmp_path / "reference.npz"),
                          *map(str, artifacts)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert sorted(report["kinds"]) == ["litert", "onnxruntime", "openvino"] and report["objects"] == 1
    assert not report["torch_loaded"] and str(device_venv.parents[1]) in report["edgedino"]  # the installed copy

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(12):  # a slow pan over a shipped photo
        writer.write(cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR)[40 + i * 2:280 + i * 2, 40 + i * 4:360 + i * 4])
    writer.release()
    by_suffix = {p.suffix: p for p in artifacts}
    bin_dir = device_venv.parent
    for name, command, model, extra in (
            ("track", [bin_dir / "edgedino-track"], by_suffix[".tflite"],
             ["--box", "100,60,80,80", "--json", "t.jsonl"]),
            ("features", [device_venv, "-m", "edgedino.apps.features"], by_suffix[".xml"], [])):
        out = tmp_path / f"{name}.mp4"
        app = subprocess.run([*map(str, command), "--model", str(model), "--source", str(video), "--headless",
                              "--save", str(out), *extra], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert app.returncode == 0 and "FPS end to end" in app.stderr, app.stderr
        assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and {x["schema_version"] for x in lines} == {1}
    assert lines[5]["t"] == pytest.approx(0.5, abs=0.01)  # t is in seconds: frame 5 of a 10 fps file


def test_installed_apps_and_recipes(device_venv, tmp_path):
    """Every app is a console script with its --help, and a shipped recipe is found by name where only the wheel is
    (no checkout): loaded as settings, and by `edgedino export`, which then asks for the export extra."""
    bin_dir = device_venv.parent
    for app in ("track", "features", "classify", "segment"):
        run = subprocess.run([str(bin_dir / f"edgedino-{app}"), "--help"], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path)
        assert run.returncode == 0 and run.stdout.startswith(f"usage: edgedino-{app} "), run.stderr
    code = "from edgedino.export.recipe import load_recipe; print(load_recipe('iphone'))"
    run = subprocess.run([str(device_venv), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and "'target': ['coreml']" in run.stdout, run.stderr
    run = subprocess.run([str(bin_dir / "edgedino"), "export", "--recipe", "iphone", "--out", "x"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode != 0 and "recipe not found" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert "edgedino[export]" in run.stderr, run.stderr
    assert not (tmp_path / "x").exists()
    code = ("from edgedino.schemas import VERSIONS, load_schema; print(sorted(n for n in VERSIONS "
            "if load_schema(n)['properties']['schema_version']['const'] == VERSIONS[n]))")
    run = subprocess.run([str(device_venv), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr  # every JSON Schema is in the wheel, read through importlib.resources
    from edgedino.schemas import VERSIONS

    assert run.stdout.strip() == str(sorted(VERSIONS))
