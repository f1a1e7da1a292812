"""The reference interpreter of Core ML ML programs: every op against torch/numpy, compressed weights against
coremltools' own decompression, real-size ViT-S/16 and ConvNeXt-T in every precision against PyTorch, and broken
packages caught."""

from __future__ import annotations

import subprocess
import sys

import coremltools as ct
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from coremltools.converters.mil import Builder as mb

from edgedino import create_model
from edgedino.errors import EdgeDinoError
from edgedino.export import parity
from edgedino.export.coreml.convert import CoreMLTarget, _compress_weights, _set_metadata
from edgedino.export.coreml.interpreter import Program
from edgedino.export.coreml.interpreter.package import Blobs, read_spec, type_name
from edgedino.export.coreml.numeric_check import INTERPRETER, InterpreterRuntime
from edgedino.export.metadata import build_metadata
from edgedino.export.module import ExportModule
from edgedino.export.spec import PRECISIONS, THRESHOLDS, ExportSpec
from edgedino.export.target import Conversion
from edgedino.runtime.coreml import model_files

TARGET = CoreMLTarget()
RNG = np.random.default_rng(0)
T = torch.from_numpy


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def interpret(tmp_path, build, inputs: dict, target=ct.target.iOS17) -> list[np.ndarray]:
    """Build a one-op MIL program, save it as an ML program as coremltools writes it, run it in the interpreter."""
    prog = mb.program(input_specs=[mb.TensorSpec(shape=v.shape) for v in inputs.values()], opset_version=target)(build)
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                       compute_precision=ct.precision.FLOAT32, pass_pipeline=ct.PassPipeline.EMPTY)
    model.save(str(tmp_path / "op.mlpackage"))
    return list(Program(tmp_path / "op.mlpackage").run(inputs).values())


X4, X3, XY = rand(2, 3, 5, 6), rand(2, 3, 4), rand(3, 1)
W, B = rand(48, 64, scale=0.1), rand(48)
Q8 = RNG.integers(-128, 128, (48, 64)).astype(np.int8)
ZP, SCALE = RNG.integers(-5, 5, 48).astype(np.int8), (RNG.random(48) * 0.01 + 0.001).astype(np.float32)
BLOCK_SCALE = (RNG.random((48, 4)) * 0.01).astype(np.float32)
BLOCK_OFFSET = RNG.integers(-3, 3, (48, 4)).astype(np.int8)
CONV_W, DW_W, PATCH_W = rand(6, 2, 3, 3), rand(4, 1, 7, 7), rand(8, 3, 4, 4)
MASK = RNG.random((9, 11)) > 0.3
MASK[:, 0] = True
Q, K, V, FMASK = rand(1, 2, 9, 8), rand(1, 2, 11, 8), rand(1, 2, 11, 8), rand(9, 11)
CH_SCALE, CH_ZP = np.array([0.02, 0.05, 0.1], np.float32), np.array([0, -2, 5], np.int8)
iOS18 = ct.target.iOS18

# (id, builder, inputs, reference on torch tensors, opset)
CASES = [
    ("add", lambda x, y: mb.add(x=x, y=y), dict(x=X3, y=XY), lambda x, y: x + y),
    ("sub", lambda x, y: mb.sub(x=x, y=y), dict(x=X3, y=XY), lambda x, y: x - y),
    ("mul", lambda x, y: mb.mul(x=x, y=y), dict(x=X3, y=XY), lambda x, y: x * y),
    ("real_div", lambda x, y: mb.real_div(x=x, y=y), dict(x=X3, y=np.abs(XY) + 0.5), lambda x, y: x / y),
    ("clip", lambda x: mb.clip(x=x, alpha=-0.5, beta=0.7), dict(x=X3), lambda x: x.clamp(-0.5, 0.7)),
    ("matmul", lambda x, y: mb.matmul(x=x, y=y, transpose_y=True), dict(x=rand(2, 5, 8), y=rand(2, 6, 8)),
     lambda x, y: x @ y.mT),
    ("linear", lambda x: mb.linear(x=x, weight=W, bias=B), dict(x=rand(2, 7, 64)), lambda x: F.linear(x, T(W), T(B))),
    ("conv-groups-strides-pads-dilations",
     lambda x: mb.conv(x=x, weight=CONV_W, strides=[2, 1], pad_type="custom", pad=[1, 2, 0, 1], dilations=[1, 2],
                       groups=2), dict(x=rand(1, 4, 11, 13)),
     lambda x: F.conv2d(F.pad(x, (0, 1, 1, 2)), T(CONV_W), stride=(2, 1), dilation=(1, 2), groups=2)),
    ("conv-depthwise-same", lambda x: mb.conv(x=x, weight=DW_W, pad_type="same", groups=4), dict(x=rand(1, 4, 9, 10)),
     lambda x: F.conv2d(x, T(DW_W), padding="same", groups=4)),
    ("conv-patchify", lambda x: mb.conv(x=x, weight=PATCH_W, strides=[4, 4], bias=B[:8]), dict(x=rand(1, 3, 16, 20)),
     lambda x: F.conv2d(x, T(PATCH_W), T(B[:8]), stride=4)),
    ("layer_norm", lambda x: mb.layer_norm(x=x, axes=[-1], gamma=B[:16], beta=W[0, :16], epsilon=1e-6),
     dict(x=rand(2, 5, 16)), lambda x: F.layer_norm(x, (16,), T(B[:16]), T(W[0, :16]), 1e-6)),
    ("gelu-exact", lambda x: mb.gelu(x=x, mode="EXACT"), dict(x=rand(4, 50, scale=3)), F.gelu),
    ("gelu-tanh", lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"), dict(x=rand(4, 50, scale=3)),
     lambda x: F.gelu(x, approximate="tanh")),
    ("gelu-sigmoid", lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"), dict(x=rand(4, 50, scale=3)),
     lambda x: x * torch.sigmoid(1.702 * x)),
    ("softmax", lambda x: mb.softmax(x=x, axis=1), dict(x=rand(2, 7, 3, scale=4)), lambda x: torch.softmax(x, 1)),
    ("sdpa", lambda q, k, v: mb.scaled_dot_product_attention(query=q, key=k, value=v), dict(q=Q, k=K, v=V),
     F.scaled_dot_product_attention, iOS18),
    ("sdpa-bool-mask", lambda q, k, v: mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=MASK),
     dict(q=Q, k=K, v=V), lambda q, k, v: F.scaled_dot_product_attention(q, k, v, T(MASK)), iOS18),
    ("sdpa-float-mask", lambda q, k, v: mb.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=FMASK),
     dict(q=Q, k=K, v=V), lambda q, k, v: F.scaled_dot_product_attention(q, k, v, T(FMASK)), iOS18),
    ("reshape", lambda x: mb.reshape(x=x, shape=[3, -1, 2]), dict(x=X3), lambda x: x.reshape(3, -1, 2)),
    ("transpose", lambda x: mb.transpose(x=x, perm=[2, 0, 1]), dict(x=X3), lambda x: x.permute(2, 0, 1)),
    ("concat", lambda x, y: mb.concat(values=[x, y, x], axis=1), dict(x=X3, y=rand(2, 5, 4)),
     lambda x, y: torch.cat([x, y, x], 1)),
    ("split", lambda x: mb.split(x=x, split_sizes=[1, 3, 2], axis=3), dict(x=X4), lambda x: x.split([1, 3, 2], 3)),
    ("slice_by_index", lambda x: mb.slice_by_index(x=x, begin=[1, 1, 0, 2], end=[2, 3, 4, 6], stride=[1, 1, 2, 1],
                                                   begin_mask=[True, False, False, False],
                                                   end_mask=[False, False, True, False],
                                                   squeeze_mask=[False, True, False, False]),
     dict(x=X4), lambda x: x[:2, 1, 0::2, 2:6]),
    ("reduce_mean", lambda x: mb.reduce_mean(x=x, axes=[1, -1], keep_dims=True), dict(x=X4),
     lambda x: x.mean((1, 3), keepdim=True)),
    ("expand_dims", lambda x: mb.expand_dims(x=x, axes=[0, -1]), dict(x=rand(3, 4)), lambda x: x[None, :, :, None]),
    ("cast", lambda x: mb.cast(x=mb.cast(x=x, dtype="fp16"), dtype="fp32"), dict(x=rand(5, 7, scale=100)),
     lambda x: x.half().float()),
    ("quantize-dequantize", lambda x: mb.dequantize(
        input=mb.quantize(input=x, scale=np.float32(0.05), zero_point=np.int8(3), output_dtype="int8"),
        scale=np.float32(0.05), zero_point=np.int8(3)), dict(x=rand(4, 30, scale=3)),
     lambda x: torch.fake_quantize_per_tensor_affine(x, 0.05, 3, -128, 127)),
    ("quantize-dequantize-per-channel", lambda x: mb.dequantize(
        input=mb.quantize(input=x, scale=CH_SCALE, zero_point=CH_ZP, axis=1, output_dtype="int8"),
        scale=CH_SCALE, zero_point=CH_ZP, axis=1), dict(x=rand(2, 3, 10, scale=3)),
     lambda x: torch.fake_quantize_per_channel_affine(x, T(CH_SCALE), T(CH_ZP).int(), 1, -128, 127)),
    ("constexpr_affine_dequantize", lambda x: mb.linear(x=x, weight=mb.constexpr_affine_dequantize(
        quantized_data=Q8, zero_point=ZP, scale=SCALE, axis=0)), dict(x=rand(3, 64)),
     lambda x: F.linear(x, (T(Q8).float() - T(ZP).float()[:, None]) * T(SCALE)[:, None])),
    ("constexpr_blockwise_shift_scale", lambda x: mb.linear(x=x, weight=mb.constexpr_blockwise_shift_scale(
        data=Q8, scale=BLOCK_SCALE, offset=BLOCK_OFFSET)), dict(x=rand(3, 64)),
     lambda x: F.linear(x, (T(Q8).float() - T(BLOCK_OFFSET).float().repeat_interleave(16, 1))
                        * T(BLOCK_SCALE).repeat_interleave(16, 1)), iOS18),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_its_reference(case, tmp_path):
    _, build, inputs, reference, *target = case
    got = interpret(tmp_path, build, inputs, *target)
    want = reference(*(T(v) for v in inputs.values()))
    want = list(want) if isinstance(want, tuple) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=2e-6)


def test_fp16_program_rounds_every_op_output_to_float16(tmp_path):
    """cast -> linear (fp16 weight) -> gelu -> cast: each op's result is float16, as Core ML holds it."""
    w16 = W.astype(np.float16)
    x = rand(5, 64, scale=3)
    got, = interpret(tmp_path, lambda x: mb.cast(x=mb.gelu(x=mb.linear(x=mb.cast(x=x, dtype="fp16"), weight=w16)),
                                                 dtype="fp32"), dict(x=x))
    r16 = lambda a: a.astype(np.float16).astype(np.float32)  # noqa: E731
    y = r16(r16(x) @ w16.astype(np.float32).T)
    expected = r16(F.gelu(T(y)).numpy())
    np.testing.assert_allclose(got, expected, rtol=0, atol=float(np.abs(expected).max()) * 2**-10)
    full = F.gelu(T(x @ w16.astype(np.float32).T)).numpy()
    assert np.abs(got - full).max() > 1e-3  # float32 compute would be visibly closer: the rounding is real


def test_unknown_op_is_an_error_naming_it(tmp_path):
    interpret(tmp_path, lambda x: mb.gelu(x=x), dict(x=rand(2, 3)))
    spec_file = model_files(tmp_path / "op.mlpackage")[0]
    spec = read_spec(tmp_path / "op.mlpackage")
    fn = spec.mlProgram.functions["main"]
    (op,) = [o for o in fn.block_specializations[fn.opset].operations if o.type == "gelu"]
    op.type = "gelu_v9"
    spec_file.write_bytes(spec.SerializeToString())
    with pytest.raises(EdgeDinoError, match=r"op #\d+ gelu_v9 -> .*does not know the MIL op 'gelu_v9'"):
        Program(tmp_path / "op.mlpackage")


# --- packages made by the Core ML target ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package(tmp_path_factory, image_batch, perturb):
    """(model, size, precision, opset) -> (module, package path); each converted once per module.

    With derive=True, int8-weights and palettize4 apply the target's own compression step to the saved fp16
    package (what convert() does after its fp16 conversion) rather than converting from PyTorch again: real-size
    conversions are slow. Tiny packages always go through convert().
    """
    done, modules = {}, {}

    def get(name: str, size: tuple[int, int], precision: str, opset: str = "iOS17", derive: bool = False):
        if (name, size) not in modules:
            modules[name, size] = ExportModule(perturb(create_model(name).reset_parameters(0), 0), size)
        key = (name, size, precision, opset)
        if key not in done:
            module = modules[name, size]
            spec = ExportSpec("coreml", precision, size, options={"minimum_deployment_target": opset})
            conversion = Conversion(module, spec, image_batch(size)[:4], build_metadata(module, spec))
            path = tmp_path_factory.mktemp("coreml") / f"{name}_{precision}_{opset}.mlpackage"
            if derive and precision in ("int8-weights", "palettize4"):
                fp16 = ct.models.MLModel(str(get(name, size, "fp16", opset)[1]), skip_model_load=True)
                compressed = _compress_weights(fp16, precision)
                _set_metadata(compressed, conversion)
                compressed.save(str(path))
            else:
                TARGET.convert(conversion, path)
            done[key] = module, path
        return done[key]

    return get


@pytest.mark.parametrize(("precision", "opset"), [("int8-weights", "iOS17"), ("palettize4", "iOS17"),
                                                  ("int8-weights", "iOS18"), ("palettize4", "iOS18")])
def test_compressed_weights_match_coremltools_decompression(package, precision, opset, tmp_path):
    """constexpr_affine_dequantize, _lut_to_dense (packed iOS16 and per-block iOS18), _blockwise_shift_scale."""
    from coremltools.optimize.coreml import decompress_weights

    _, path = package("vit_test", (64, 64), precision, opset)
    decompress_weights(ct.models.MLModel(str(path), skip_model_load=True)).save(str(tmp_path / "dense.mlpackage"))
    compressed, dense = Program(path), Program(tmp_path / "dense.mlpackage")
    fn = read_spec(path).mlProgram.functions["main"]
    ops = fn.block_specializations[fn.opset].operations
    names = [o.outputs[0].name for o in ops if o.type.startswith("constexpr")]
    assert len(names) >= 8
    for name in names:
        np.testing.assert_array_equal(compressed.consts[name], dense.consts[name], err_msg=name)


def test_blob_reader_matches_coremltools_storage_reader(package):
    from coremltools.libmilstoragepython import _BlobStorageReader

    read = {"FLOAT16": "read_fp16_data", "FLOAT32": "read_float_data", "INT8": "read_int8_data",
            "UINT8": "read_uint8_data", "UINT4": "read_uint4_data"}
    checked = set()
    for precision, opset in [("int8", "iOS17"), ("palettize4", "iOS17"), ("palettize4", "iOS18")]:
        path = package("vit_test", (64, 64), precision, opset)[1]
        spec_file, root = model_files(path)
        blobs, reader = Blobs(root), _BlobStorageReader(str(root / "weights" / "weight.bin"))
        fn = read_spec(path).mlProgram.functions["main"]
        for op in fn.block_specializations[fn.opset].operations:
            values = [*op.attributes.values(), *(b.value for a in op.inputs.values() for b in a.arguments)]
            for v in values:
                if v.WhichOneof("value") == "blobFileValue":
                    mil_type, offset = type_name(v.type.tensorType), v.blobFileValue.offset
                    mine = blobs.read(v.blobFileValue.fileName, offset, mil_type, tuple(
                        d.constant.size for d in v.type.tensorType.dimensions))
                    theirs = np.asarray(getattr(reader, read[mil_type])(offset))
                    np.testing.assert_array_equal(mine.ravel().view(theirs.dtype) if mine.dtype.itemsize ==
                                                  theirs.dtype.itemsize else mine.ravel(), theirs.ravel())
                    checked.add(mil_type)
    assert {"FLOAT16", "INT8", "UINT8", "UINT4"} <= checked


REAL = [(m, p) for m in ("vits16", "convnext_tiny") for p in PRECISIONS]


@pytest.mark.parametrize(("name", "precision"), REAL, ids=[f"{m}-{p}" for m, p in REAL])
def test_real_size_package_matches_pytorch_at_the_export_threshold(package, image_batch, name, precision):
    module, path = package(name, (224, 224), precision, derive=True)
    inputs = image_batch((224, 224))[4:6]
    report = {p.output: p for p in parity.compare(InterpreterRuntime(path), inputs, parity.reference(module, inputs))}
    assert report["patch_tokens"].cosine_mean >= THRESHOLDS[precision], report
    assert report["cls"].cosine_mean >= THRESHOLDS[precision] - (0.02 if precision == "int8" else 0), report
    if precision == "fp32":
        assert report["patch_tokens"].max_abs < 1e-3, report


def transposed_copy(src, dst) -> None:
    """Copy a package and write its square attention-projection weights back transposed (the spec is unchanged)."""
    import shutil

    shutil.copytree(src, dst)
    root = model_files(dst)[1]
    fn = read_spec(dst).mlProgram.functions["main"]
    ops = [o for o in fn.block_specializations[fn.opset].operations
           if o.type == "const" and "attn_proj_weight" in o.outputs[0].name]
    assert ops
    blob = root / "weights" / "weight.bin"
    data = bytearray(blob.read_bytes())
    for op in ops:
        value = op.attributes["val"]
        weight = Blobs(root).read(value.blobFileValue.fileName, value.blobFileValue.offset,
                                  type_name(value.type.tensorType),
                                  tuple(d.constant.size for d in value.type.tensorType.dimensions))
        assert weight.shape[0] == weight.shape[1]
        record = value.blobFileValue.offset  # metadata record: sentinel, type, size, then the data offset
        start = int(np.frombuffer(bytes(data[record + 16:record + 24]), np.uint64)[0])
        data[start:start + weight.nbytes] = np.ascontiguousarray(weight.T).tobytes()
    blob.write_bytes(bytes(data))


def test_a_transposed_weight_is_caught(package, image_batch, tmp_path):
    from edgedino.export.exporter import ArtifactResult
    from edgedino.export.gate import verify_artifact

    module, path = package("vit_test", (64, 64), "fp32")
    inputs = image_batch((64, 64))[:2]
    reference = parity.reference(module, inputs)
    results = {}
    for kind, candidate in (("intact", path), ("broken", tmp_path / "broken.mlpackage")):
        if kind == "broken":
            transposed_copy(path, candidate)
        results[kind] = ArtifactResult("coreml", "fp32", str(candidate), "exported", threshold=THRESHOLDS["fp32"])
        verify_artifact(results[kind], TARGET, inputs, reference, lambda line: None)
    assert results["intact"].status == "ok"
    assert results["broken"].status == "verify-failed" and "below the fp32 threshold" in results["broken"].message
    assert {p["runtime"] for p in results["broken"].parity} == {INTERPRETER}


def test_a_weight_with_a_wrong_declared_shape_is_an_error(package, tmp_path):
    import shutil

    _, path = package("vit_test", (64, 64), "fp32")
    shutil.copytree(path, tmp_path / "bad.mlpackage")
    spec_file = model_files(tmp_path / "bad.mlpackage")[0]
    spec = read_spec(tmp_path / "bad.mlpackage")
    fn = spec.mlProgram.functions["main"]
    (op,) = [o for o in fn.block_specializations[fn.opset].operations
             if o.type == "const" and o.outputs[0].name.endswith("blocks_0_mlp_fc1_weight")]
    for t in (op.outputs[0].type.tensorType, op.attributes["val"].type.tensorType):
        t.dimensions[0].constant.size, t.dimensions[1].constant.size = t.dimensions[1].constant.size, \
            t.dimensions[0].constant.size
    spec_file.write_bytes(spec.SerializeToString())
    with pytest.raises(EdgeDinoError, match=r"op #\d+ linear -> .*(cannot evaluate|declares)"):
        InterpreterRuntime(tmp_path / "bad.mlpackage").run(np.zeros((1, 3, 64, 64), np.float32))


def test_interpreter_runs_without_torch(package):
    _, path = package("vit_test", (64, 64), "fp16")
    code = ("import sys; sys.modules['torch'] = None; import numpy as np; "
            "from edgedino.export.coreml.numeric_check import InterpreterRuntime; "
            f"r = InterpreterRuntime({str(path)!r}); out = r.run(np.ones(r.input_shape, np.float32)); "
            "print(r.metadata['precision'], sorted(out), out['patch_tokens'].shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("fp16 ['cls', 'patch_tokens', 'registers'] (1, 4, 4, 64)")


def test_export_reports_interpreter_parity(tmp_path):
    from edgedino.export import export

    lines = []
    result = export("coreml", model="convnext_test", precisions=["fp16"], imgsz=64, out=tmp_path, log=lines.append)
    (artifact,) = result.artifacts
    assert artifact.status == "ok" and {p["runtime"] for p in artifact.parity} == {INTERPRETER}
    assert any(line.strip().startswith(f"{INTERPRETER} on 8 images") for line in lines), lines


def test_verify_command(tmp_path, capsys, perturb):
    from edgedino.checkpoints import save_backbone
    from edgedino.cli import main
    from edgedino.export import export

    weights = save_backbone(perturb(create_model("vit_test").reset_parameters(0), 0), tmp_path / "w.pt")
    export(["coreml", "onnx"], weights=str(weights), precisions=["fp16"], imgsz=64, out=tmp_path / "exp",
           log=lambda line: None)
    for artifact in ("vit_test_64_fp16.mlpackage", "vit_test_64_fp16.onnx"):
        assert main(["verify", str(tmp_path / "exp" / artifact), "--weights", str(weights)]) == 0
    assert "coreml  fp16" in capsys.readouterr().out
    transposed_copy(tmp_path / "exp" / "vit_test_64_fp16.mlpackage", tmp_path / "broken.mlpackage")
    assert main(["verify", str(tmp_path / "broken.mlpackage"), "--weights", str(weights)]) == 1
    export("coreml", model="vit_test", precisions=["fp16"], imgsz=64, out=tmp_path / "random", log=lambda line: None)
    assert main(["verify", str(tmp_path / "random" / "vit_test_64_fp16.mlpackage")]) == 0  # rebuilt from its seed
    assert "from random weights (seed 0)" in capsys.readouterr().err
