"""Core ML target on Linux: every precision converts and passes the static checks (prediction needs macOS)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import edgedino.runtime
from edgedino import create_model
from edgedino.errors import EdgeDinoError
from edgedino.export.coreml.calibration import run_program
from edgedino.export.coreml.convert import CoreMLTarget, embedded_metadata
from edgedino.export.module import ExportModule
from edgedino.export.spec import PRECISIONS, ExportSpec
from edgedino.export.target import Conversion
from edgedino.runtime.base import RuntimeUnavailable
from edgedino.runtime.coreml import NOT_MACOS, CoreMLRuntime, read_metadata

TARGET = CoreMLTarget()
MODELS = ("vit_test", "convnext_test")
# Every precision at a non-square size; the square size for the float and the calibrated paths.
CASES = [(m, (64, 96), p) for m in MODELS for p in PRECISIONS]
CASES += [(m, (64, 64), p) for m in MODELS for p in ("fp16", "int8")]


def make_conversion(name: str, size: tuple[int, int], precision: str, calib, **spec_args) -> Conversion:
    torch.manual_seed(0)
    model = create_model(name).eval()
    module = ExportModule(model, size)
    shapes = model.output_shapes(*size)
    metadata = {"model": name, "license": "Apache-2.0", "imgsz": list(size),
                "outputs": {n: list(shapes[n]) for n in module.output_names}}
    return Conversion(module, ExportSpec("coreml", precision, size, **spec_args), calib, metadata)


@pytest.fixture(scope="module")
def convert(tmp_path_factory, image_batch):
    """(model, size, precision) -> (Conversion, package path); each package is converted once per module."""
    done = {}

    def get(name: str, size: tuple[int, int], precision: str):
        key = (name, size, precision)
        if key not in done:
            conversion = make_conversion(name, size, precision, image_batch(size)[:4])
            path = tmp_path_factory.mktemp("coreml") / f"{name}_{size[0]}x{size[1]}_{precision}.mlpackage"
            TARGET.convert(conversion, path)
            done[key] = conversion, path
        return done[key]

    return get


@pytest.mark.parametrize(("name", "size", "precision"), CASES, ids=[f"{m}-{h}x{w}-{p}" for m, (h, w), p in CASES])
def test_every_precision_converts_and_passes_static_checks(convert, name, size, precision):
    conversion, path = convert(name, size, precision)
    lines = TARGET.static_checks(conversion, path)
    assert path.is_dir() and (path / "Manifest.json").is_file()
    assert any(line.startswith("input: image float32 (1, 3, ") for line in lines)
    (weights,) = [line for line in lines if line.startswith("weights:")]
    expected = {"fp32": "float32, none compressed", "fp16": "float16, none compressed",
                "int8-weights": "constexpr_affine_dequantize", "int8": "activations int8",
                "palettize4": "16-entry look-up tables"}[precision]
    assert expected in weights, weights
    assert ("RoPE: sin/cos tables" if name.startswith("vit") else "RoPE: none") in " ".join(lines)


def test_metadata_round_trips_with_converter_versions(convert):
    import coremltools as ct

    conversion, path = convert("vit_test", (64, 96), "fp16")
    meta = read_metadata(path)
    assert meta == embedded_metadata(conversion)
    assert meta["converter"]["coremltools"] == ct.__version__ and meta["outputs"]["patch_tokens"] == [1, 4, 6, 64]
    description = ct.utils.load_spec(str(path)).description.metadata
    assert (description.author, description.license) == ("edgedino", "Apache-2.0")
    assert "vit_test 64x96 fp16" in description.shortDescription


def test_rope_tables_are_not_compressed_but_a_global_config_would_compress_them(convert, tmp_path):
    """At 128x192 the sin/cos tables (101x64: 5 prefix and 96 patch rows, 2 heads of 32) pass coremltools'
    2048-element threshold: only a weight selector spares them."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    conversion, path = convert("vit_test", (128, 192), "palettize4")
    assert "RoPE: sin/cos tables (101, 64) stored uncompressed" in TARGET.static_checks(conversion, path)
    fp32_conv, fp32_path = convert("vit_test", (128, 192), "fp32")
    naive = cto.palettize_weights(ct.models.MLModel(str(fp32_path), skip_model_load=True),
                                  cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=4)))
    naive.save(str(tmp_path / "naive.mlpackage"))
    with pytest.raises(EdgeDinoError, match="RoPE sin table"):
        TARGET.static_checks(conversion, tmp_path / "naive.mlpackage")


def test_a_wrong_expectation_fails_the_checks(convert):
    fp32, fp32_path = convert("vit_test", (64, 96), "fp32")
    expect = lambda precision, **kw: Conversion(fp32.module, ExportSpec("coreml", precision, (64, 96)), None,
                                                {**fp32.metadata, **kw})
    with pytest.raises(EdgeDinoError, match="expected constexpr_lut_to_dense"):
        TARGET.static_checks(expect("palettize4"), fp32_path)
    with pytest.raises(EdgeDinoError, match="not all float16"):
        TARGET.static_checks(expect("fp16"), fp32_path)
    with pytest.raises(EdgeDinoError, match="activation quantize/dequantize ops none"):
        TARGET.static_checks(expect("int8"), convert("vit_test", (64, 96), "int8-weights")[1])
    with pytest.raises(EdgeDinoError, match="outputs are"):
        TARGET.static_checks(expect("fp32", outputs={"cls": [1, 64], "patch_tokens": [1, 4, 6, 64]}), fp32_path)
    with pytest.raises(EdgeDinoError, match="does not round-trip"):
        TARGET.static_checks(expect("fp32", model="another"), fp32_path)


def test_what_core_ml_cannot_express_is_refused_before_conversion(tmp_path, image_batch):
    cases = [(dict(input_format="uint8"), "fp16", None, "cannot take a uint8 tensor"),
             (dict(options={"minimum_deployment_target": "iOS16"}), "fp16", None, "'iOS16' is not supported"),
             ({}, "int8", None, "needs calibration images")]
    for spec_args, precision, calib, message in cases:
        conversion = make_conversion("vit_test", (64, 64), precision, calib, **spec_args)
        with pytest.raises(EdgeDinoError, match=message):
            TARGET.convert(conversion, tmp_path / "x.mlpackage")
        assert not (tmp_path / "x.mlpackage").exists()


def test_ios18_target_converts_int8_with_fused_attention(tmp_path, image_batch):
    conversion = make_conversion("vit_test", (64, 64), "int8", image_batch((64, 64))[:4],
                           options={"minimum_deployment_target": "iOS18"})
    TARGET.convert(conversion, tmp_path / "m.mlpackage")
    lines = TARGET.static_checks(conversion, tmp_path / "m.mlpackage")
    assert "opset CoreML8" in lines[0] and "constexpr_blockwise_shift_scale" in " ".join(lines)


@pytest.mark.parametrize("name", MODELS)
def test_calibration_evaluator_reproduces_the_module(name, image_batch):
    """int8 ranges come from running the MIL program in the reference interpreter: it must compute what the module
    computes."""
    import coremltools as ct

    from edgedino.export.coreml.convert import _to_mil

    conversion = make_conversion(name, (64, 96), "fp32", None)
    x = image_batch((64, 96))[:1]
    values = run_program(_to_mil(conversion.module, "fp32", ct.target.iOS17), x)
    with torch.no_grad():
        expected = conversion.module(torch.from_numpy(x))
    for out_name, want in zip(conversion.module.output_names, expected, strict=True):
        np.testing.assert_allclose(values[out_name], want.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_int8_of_a_small_layerscale_model_passes_parity_in_the_interpreter(convert, image_batch, name):
    """Default init (LayerScale 1e-5 / 1e-6), like a briefly distilled student: int8 residual adds used to round
    the cls token away (vit_test cls cosine 0.94) or overflow float16 after coremltools rescaled them
    (convnext_test patch cosine 0.66, inf in the program)."""
    from edgedino.export import parity
    from edgedino.export.coreml.numeric_check import InterpreterRuntime
    from edgedino.export.spec import THRESHOLDS

    scales = [p.abs().max().item() for n, p in create_model(name).named_parameters() if n.endswith("gamma")]
    assert scales and max(scales) <= 1e-5
    conversion, path = convert(name, (64, 64), "int8")
    inputs = image_batch((64, 64))[4:6]
    runtime = InterpreterRuntime(path)
    report = {p.output: p for p in parity.compare(runtime, inputs, parity.reference(conversion.module, inputs))}
    assert all(p.cosine_min >= THRESHOLDS["int8"] for p in report.values()), report
    values = runtime.program.values({runtime.input_name: inputs[:1]})
    assert all(np.isfinite(v).all() for v in values.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")


def test_runtime_reads_metadata_but_refuses_prediction_off_macos(convert, monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Linux")
    conversion, path = convert("convnext_test", (64, 96), "fp16")
    assert read_metadata(path)["model"] == "convnext_test"
    with pytest.raises(RuntimeUnavailable) as err:
        edgedino.runtime.load(path)
    assert str(err.value) == NOT_MACOS
    runtime = CoreMLRuntime(path)  # what load() builds on macOS: the description parses anywhere
    assert (runtime.kind, runtime.input_name, runtime.input_shape) == ("coreml", "image", (1, 3, 64, 96))
    assert runtime.input_dtype == np.float32 and runtime.output_names == list(conversion.module.output_names)
    assert runtime.metadata == embedded_metadata(conversion)


def test_runtime_reads_metadata_without_torch(convert):
    _, path = convert("convnext_test", (64, 96), "fp16")
    code = ("import sys; sys.modules['torch'] = None; from edgedino.runtime.coreml import read_metadata; "
            f"print(read_metadata({str(path)!r})['model'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "convnext_test", out.stderr[-2000:]


def test_a_tiny_input_exports_every_precision_and_tokens_are_not_weights(tmp_path):
    """Regression: at 32x32 the class and register token constants, read by a concat through its list input, are as
    large as the RoPE tables; coremltools' get_weights_metadata failed on them ('list' object has no attribute 'val')
    for every precision."""
    import coremltools as ct

    from edgedino.export import export
    from edgedino.export.coreml.constants import main_ops, size, uses, weight_names
    from edgedino.export.coreml.convert import MIN_WEIGHT_SIZE, WEIGHT_INPUTS

    result = export("coreml", model="vit_test", precisions=list(PRECISIONS), imgsz=32, out=tmp_path,
                    log=lambda line: None)
    assert [(a.precision, a.status) for a in result.artifacts] == [(p, "ok") for p in PRECISIONS], \
        [a.message for a in result.artifacts]
    spec = ct.utils.load_spec(str(tmp_path / "vit_test_32_fp32.mlpackage"))
    ops = main_ops(spec)
    readers = uses(ops)
    tokens = [op.outputs[0].name for op in ops if op.type == "const" and ("concat", "values") in
              readers[op.outputs[0].name]]
    assert len(tokens) == 2 and all(size(op) >= 64 for op in ops if op.outputs[0].name in tokens)
    every = weight_names(spec, WEIGHT_INPUTS, 1)
    assert not set(tokens) & set(every) and set(weight_names(spec, WEIGHT_INPUTS, MIN_WEIGHT_SIZE)) <= set(every)
    assert all(set(k for _, k in readers[n]) <= {"weight", "x", "y"} for n in every) and len(every) >= 9
