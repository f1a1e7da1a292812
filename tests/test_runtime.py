"""edgedino.runtime: every artifact type that runs here loads and gives the same Features as PyTorch."""

from __future__ import annotations

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
