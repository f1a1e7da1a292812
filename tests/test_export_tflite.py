"""TFLite target: every precision converts, runs in ai-edge-litert and matches PyTorch on real photos."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from edgedino.errors import EdgeDinoError
from edgedino.export.module import ExportModule
from edgedino.export.spec import THRESHOLDS, ExportSpec
from edgedino.export.target import TARGETS, Conversion
from edgedino.export.tflite import TfliteTarget
from edgedino.models import create_model
from edgedino.runtime import base
from edgedino.runtime.preprocess import preprocess, read_image
from edgedino.runtime.tflite import LiteRtRuntime, output_map, read_metadata

SIZE = (64, 96)  # non-square on purpose: catches height/width mix-ups
CASES = [(name, precision, "float32") for name in ("vit_test", "convnext_test")
         for precision in ("fp32", "fp16", "int8-weights", "int8")]
CASES += [("vit_test", "fp32", "uint8"), ("vit_test", "int8", "uint8")]
CASE_IDS = [f"{n}-{p}-{f}" for n, p, f in CASES]


def _inputs(image_paths, input_format: str) -> np.ndarray:
    """The shipped photos in the artifact's input format, one per row."""
    images = [read_image(p) for p in image_paths]
    if input_format == "uint8":
        return np.stack([cv2.resize(im, SIZE[::-1], interpolation=cv2.INTER_AREA) for im in images])
    return np.concatenate([preprocess(im, SIZE) for im in images])


def _metadata(module: ExportModule, precision: str) -> dict:
    shapes = module.backbone.output_shapes(*SIZE)
    return {"model": module.backbone.cfg.name, "precision": precision,
            "outputs": {name: list(shapes[name]) for name in module.output_names}}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, image_paths):
    """(name, precision, format) -> (module, inputs, path, metadata given to export), converted once."""
    out, modules = {}, {}
    folder = tmp_path_factory.mktemp("tflite")
    for name, precision, fmt in CASES:
        if (name, fmt) not in modules:
            torch.manual_seed(0)
            modules[name, fmt] = ExportModule(create_model(name).eval(), SIZE, input_format=fmt)
        module, x = modules[name, fmt], _inputs(image_paths, fmt)
        spec = ExportSpec("tflite", precision, SIZE, input_format=fmt)
        path = folder / f"{spec.filename(name)}.tflite"
        metadata = _metadata(module, precision)
        TfliteTarget().convert(Conversion(module, spec, x, metadata), path)
        out[name, precision, fmt] = (module, x, path, metadata)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity per token over the channel (last) dim."""
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_target_is_registered():
    target = TARGETS["tflite"]
    assert isinstance(target, TfliteTarget) and target.suffix == ".tflite"
    assert target.precisions == ("fp32", "fp16", "int8-weights", "int8")
    assert target.available() is None


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_outputs_names_shapes_dtypes(artifacts, case):
    module, x, path, _ = artifacts[case]
    rt = base.load(path, threads=2)
    assert isinstance(rt, LiteRtRuntime) and rt.kind == "litert"
    assert rt.input_shape == module.input_shape()
    assert rt.input_dtype == (np.uint8 if case[2] == "uint8" else np.float32)
    out = rt.run(x[:1])
    shapes = module.backbone.output_shapes(*SIZE)
    assert list(out) == list(module.output_names)
    assert {k: v.shape for k, v in out.items()} == {k: shapes[k] for k in module.output_names}
    assert all(v.dtype == np.float32 for v in out.values())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_pytorch(artifacts, case):
    module, x, path, _ = artifacts[case]
    rt = base.load(path, threads=2)
    patch, cls = [], []
    for sample in x:
        with torch.no_grad():
            ref = dict(zip(module.output_names, module(torch.from_numpy(sample[None])), strict=True))
        out = rt.run(sample[None])
        patch.append(_cosine(out["patch_tokens"], ref["patch_tokens"].numpy()).mean())
        cls.append(_cosine(out["cls"], ref["cls"].numpy()).mean())
    assert np.mean(patch) >= THRESHOLDS[case[1]], (np.mean(patch), np.min(patch))
    assert np.mean(cls) >= THRESHOLDS[case[1]], (np.mean(cls), np.min(cls))


def _tensor_types(path) -> tuple[set[str], set[str]]:
    """TFLite type names of the constant tensors and of the activation tensors in the main graph."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    weights, activations = set(), set()
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        buffer = model.Buffers(tensor.Buffer())
        (weights if buffer.DataLength() or buffer.Size() else activations).add(names[tensor.Type()])
    return weights, activations


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tensors_have_the_requested_types(artifacts, case):
    weights, activations = _tensor_types(artifacts[case][2])
    assert "FLOAT32" in activations
    assert ("FLOAT16" in weights) == (case[1] == "fp16")
    assert ("INT8" in weights) == (case[1] in ("int8-weights", "int8"))
    assert ("INT8" in activations) == (case[1] == "int8")  # static: int8 activations; dynamic: float


def test_metadata_round_trip(artifacts):
    for module, _, path, given in artifacts.values():
        stored = read_metadata(path)
        assert stored == given  # convert() added the converter versions to the same dict
        assert set(stored["converter"]) == {"litert_torch", "ai_edge_litert", "ai_edge_quantizer"}
        assert list(stored["outputs"]) == list(module.output_names)
        assert base.load(path).metadata == stored


def test_metadata_is_replaced_not_duplicated(artifacts, tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    from edgedino.export.tflite import embed_metadata

    path = tmp_path / "copy.tflite"
    path.write_bytes(artifacts["convnext_test", "int8", "float32"][2].read_bytes())
    embed_metadata(path, {"note": "second", "text": "ünïcode"})
    assert read_metadata(path) == {"note": "second", "text": "ünïcode"}
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(b"edgedino") == 1
    assert base.load(path).run(artifacts["convnext_test", "int8", "float32"][1][:1])["patch_tokens"].shape[-1] == 128


def test_output_map_by_name_and_by_recorded_order():
    meta = {"outputs": {"cls": [1, 8], "patch_tokens": [1, 2, 2, 8], "registers": [1, 4, 8]}}
    assert output_map(["patch_tokens", "cls"], {}) == {"cls": "cls", "patch_tokens": "patch_tokens"}
    assert output_map(["output_2", "output_0", "output_1"], meta) == {
        "output_0": "cls", "output_1": "patch_tokens", "output_2": "registers"}
    assert output_map(["output_1", "output_0"], {}) == {"output_0": "output_0", "output_1": "output_1"}
    with pytest.raises(EdgeDinoError):
        output_map(["output_0", "output_1"], meta)


def test_int8_without_calibration_is_a_clear_error(tmp_path):
    module = ExportModule(create_model("convnext_test").eval(), SIZE)
    with pytest.raises(EdgeDinoError, match="calibration"):
        TfliteTarget().convert(Conversion(module, ExportSpec("tflite", "int8", SIZE), None, {}), tmp_path / "x.tflite")


def test_runtime_is_torch_free(artifacts):
    _, x, path, _ = artifacts["vit_test", "int8", "uint8"]
    code = ("import sys, numpy as np; from edgedino.runtime import load; "
            f"rt = load({str(path)!r}, 1); out = rt.run(np.zeros({x[:1].shape}, np.uint8)); "
            "assert sorted(out) == ['cls', 'patch_tokens', 'registers'], out.keys(); "
            "bad = [m for m in ('torch', 'litert_torch', 'ai_edge_quantizer') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_unnamed_outputs_follow_the_recorded_order(artifacts, tmp_path):
    """A tuple-output conversion (signature names output_0, ...) still maps back through metadata["outputs"]."""
    import litert_torch

    from edgedino.export.tflite import embed_metadata

    module, x, path, metadata = artifacts["vit_test", "fp32", "float32"]
    plain = tmp_path / "plain.tflite"
    litert_torch.convert(module, (torch.from_numpy(x[:1]),)).export(str(plain))
    assert base.load(plain).metadata == {}
    assert sorted(base.load(plain).run(x[:1])) == ["output_0", "output_1", "output_2"]
    embed_metadata(plain, metadata)
    out, named = base.load(plain).run(x[:1]), base.load(path).run(x[:1])
    assert list(out) == ["cls", "patch_tokens", "registers"]
    for name in out:
        np.testing.assert_allclose(out[name], named[name], atol=1e-5)
