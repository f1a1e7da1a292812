"""edgedino.runtime: every artifact type that runs here loads and gives the same Features as PyTorch."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from edgedino.errors import EdgeDinoError
from edgedino.runtime import Features, load
from edgedino.runtime.frames import read_frames


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """vit_test at 112x160 in every runtime here, plus a uint8 static-batch-2 ONNX and the .pth itself."""
    from edgedino.checkpoints import load_backbone, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("rt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = load_backbone(None, "vit_test")
    net.reset_parameters(seed=3)
    save_backbone(net, out / "vit_test.pth")
    paths = [out / "vit_test.pth"]
    for kwargs in ({"targets": ["onnx", "openvino", "tflite"], "imgsz": "112x160"},
                   {"targets": ["onnx"], "imgsz": 112, "input_format": "uint8", "batch": 2}):
        result = export(weights=out / "vit_test.pth", precisions=["fp32"], out=out / str(len(paths)), **kwargs)
        assert result.ok
        paths += [a.path for a in result.artifacts]
    return paths


def test_every_artifact_gives_features(artifacts):
    import cv2

    frames = [cv2.resize(f, (320, 224), interpolation=cv2.INTER_AREA) for f in read_frames(None, 3)]
    reference = load(artifacts[0]).features(frames, short_side=112)
    assert reference.patch_tokens.shape == (3, 7, 10, 64) and reference.input_hw == (112, 160)
    kinds = set()
    for path in artifacts[1:]:
        runtime = load(path, threads=1)
        kinds.add(runtime.kind)
        feats = runtime.features(frames)
        assert isinstance(feats, Features) and set(feats.ms) == {"preprocess", "backbone"}
        assert feats.cls.shape[0] == feats.patch_tokens.shape[0] == 3
        if feats.input_hw == reference.input_hw:
            np.testing.assert_allclose(feats.patch_tokens, reference.patch_tokens, atol=2e-3)
    assert kinds == {"onnxruntime", "openvino", "litert"}


def test_static_batch_pads_and_trims(artifacts):
    runtime = load(artifacts[-1])
    assert runtime.input_shape == (2, 112, 112, 3) and runtime.batch == 2
    frames = read_frames(None, 3)
    together = runtime.features(frames).patch_tokens
    one_by_one = np.concatenate([runtime.features(f).patch_tokens for f in frames])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_fixed_size_artifact_refuses_another_size(artifacts):
    with pytest.raises(EdgeDinoError, match="exported for 112x160 input; it cannot run at short side 224"):
        load(artifacts[1]).features(read_frames(None, 1), short_side=224)


def test_unknown_and_missing_artifacts(tmp_path):
    with pytest.raises(EdgeDinoError, match="artifact not found"):
        load(tmp_path / "nope.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(EdgeDinoError, match="unknown artifact type '.bin'"):
        load(tmp_path / "model.bin")


ALT_STACK = """
import ctypes, gc, signal, subprocess, sys


class Stack(ctypes.Structure):
    _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]


def alternate_stack():
    s = Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(s))
    return s.sp, s.size


signal.signal(signal.SIGCHLD, lambda *args: None)  # as torch's DataLoader does; Python handlers use the stack
from edgedino.runtime import load
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_openvino_runtimes_freed_in_any_order_leave_signals_working(artifacts):
    """The issue's reproducer through edgedino's runtime: two OpenVINO runtimes destroyed first-in-first-out, then
    a signal with a Python handler. With an ov.Core per runtime, each Core's CPU plugin installed its own
    alternate signal stack and restored the one it had found when destroyed, so this order left the thread's
    stack pointing at the first plugin's freed memory, and SIGCHLD could kill the process (SIGSEGV, rc -11; whether
    it does depends on what reuses that memory). So the test also checks the mechanism: one stack, installed once
    and never changed, whatever is loaded and freed."""
    xml = next(str(p) for p in artifacts if str(p).endswith(".xml"))
    run = run_python(ALT_STACK + f"""
stacks = []
a = load({xml!r})
stacks.append(alternate_stack())
b = load({xml!r})
stacks.append(alternate_stack())
del a
gc.collect()
stacks.append(alternate_stack())
del b
gc.collect()
stacks.append(alternate_stack())
subprocess.run(["true"])
print("survived", len(set(stacks)) == 1 and stacks[0][0] is not None, stacks)
""")
    assert run.returncode == 0 and "survived True" in run.stdout, (run.returncode, run.stdout, run.stderr[-2000:])


def test_nncf_cores_nest_inside_the_runtime_core(artifacts, tmp_path):
    """NNCF makes short-lived ov.Cores while quantizing; they must restore the alternate stack they found (the
    runtime Core's), so signals still work after an int8 OpenVINO export next to a loaded runtime."""
    xml = next(str(p) for p in artifacts if str(p).endswith(".xml"))
    run = run_python(ALT_STACK + f"""
from edgedino.export import export
runtime = load({xml!r})
before = alternate_stack()
result = export(targets="openvino", weights={str(artifacts[0])!r}, precisions=["int8", "int8-weights"],
                calib_size=4, imgsz="112x160", out={str(tmp_path)!r}, log=lambda line: None)
assert all(a.ok for a in result.artifacts), [a.message for a in result.artifacts]
del result
gc.collect()
after = alternate_stack()
subprocess.run(["true"])
print("survived", before == after and before[0] is not None)
""")
    assert run.returncode == 0 and "survived True" in run.stdout, (run.returncode, run.stdout, run.stderr[-2000:])


def test_a_solid_colour_normalises_to_the_imagenet_formula():
    """Every consumer's preprocessing gives (c/255 - mean)/std per channel for a solid colour."""
    from edgedino.runtime.frames import model_inputs
    from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess

    colour = np.array([200, 100, 50], np.uint8)
    rgb = np.broadcast_to(colour, (40, 56, 3)).copy()
    want = (colour / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    for x in (preprocess(rgb, (32, 48)), model_inputs([rgb], (32, 48))):
        assert x.shape == (1, 3, 32, 48) and x.dtype == np.float32
        np.testing.assert_allclose(x[0].reshape(3, -1), np.repeat(want[:, None], 32 * 48, axis=1), atol=1e-5)


def test_a_pure_red_png_puts_the_high_value_in_channel_0(tmp_path):
    """Files are read as RGB (OpenCV decodes BGR): red is channel 0, through every reader edgedino has."""
    import cv2

    from edgedino.runtime.frames import model_inputs, read_frames
    from edgedino.runtime.preprocess import preprocess, read_image

    bgr = np.zeros((32, 32, 3), np.uint8)
    bgr[..., 2] = 255
    (tmp_path / "red").mkdir()
    cv2.imwrite(str(tmp_path / "red" / "red.png"), bgr)
    for rgb in (read_image(tmp_path / "red" / "red.png"), read_frames(tmp_path / "red", 1)[0]):
        assert rgb[..., 0].min() == 255 and rgb[..., 1:].max() == 0
        x = preprocess(rgb, (32, 32))[0]
        assert x[0].min() > 2.2 and x[1].max() < -2.0 and x[2].max() < -1.8  # (1-.485)/.229, -.456/.224, -.406/.225
        assert model_inputs([rgb], (32, 32), "uint8")[0, ..., 0].min() == 255
