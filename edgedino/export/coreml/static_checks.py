"""Static checks of a Core ML package: everything Linux can verify without Apple's runtime.

Each check returns one line saying what it verified, or raises EdgeDinoError naming the problem.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.export.coreml.constants import input_names, main_ops, uses
from edgedino.export.target import Conversion
from edgedino.runtime.base import METADATA_KEY

LINEAR_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")
COMPRESSION = {"fp32": (), "fp16": (), "int8-weights": LINEAR_OPS, "int8": LINEAR_OPS,
               "palettize4": ("constexpr_lut_to_dense",)}
INT8 = ("INT8", "UINT8")


def check_package(conversion: Conversion, path: Path, metadata: dict, weight_inputs: dict, min_size: int,
                  kept: Callable[[str], bool] = lambda name: False) -> list[str]:
    """All static checks of the package at `path` against what `conversion` asked for; `kept(name)` says whether a
    weight belongs to a layer the int8 policy keeps in float."""
    import coremltools as ct

    try:
        model = ct.models.MLModel(str(path), skip_model_load=True)
    except Exception as e:  # coremltools raises bare Exceptions for unreadable packages
        raise EdgeDinoError(f"{path.name}: not a readable Core ML package ({e})") from None
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise EdgeDinoError(f"{path.name}: a Core ML {spec.WhichOneof('Type')}, not an ML program")
    fn = spec.mlProgram.functions["main"]
    ops = main_ops(spec)
    return [f"package loads: ML program, spec version {spec.specificationVersion}, opset {fn.opset}, {len(ops)} ops",
            _check_input(spec, conversion), _check_outputs(spec, conversion), _check_rope(spec, path, conversion),
            _check_weights(ops, conversion.spec.precision, weight_inputs, min_size, kept),
            _check_metadata(spec, metadata)]


def _mil_type(tensor_type) -> str:
    """A MIL tensor's element type by name: "FLOAT16", "INT8", ..."""
    from coremltools.proto.MIL_pb2 import DataType

    return DataType.Name(tensor_type.dataType)


def _dims(op) -> tuple[int, ...]:
    return tuple(d.constant.size for d in op.outputs[0].type.tensorType.dimensions)


def _check_input(spec, conversion: Conversion) -> str:
    from coremltools.proto.FeatureTypes_pb2 import ArrayFeatureType

    want = tuple(conversion.module.input_shape())
    array_type = ArrayFeatureType.ArrayDataType.Name
    inputs = [(i.name, tuple(i.type.multiArrayType.shape), array_type(i.type.multiArrayType.dataType))
              for i in spec.description.input]
    if inputs != [("image", want, "FLOAT32")]:
        raise EdgeDinoError(f"Core ML input is {inputs}, expected one float32 'image' of shape {want}")
    return f"input: image float32 {want}"


def _check_outputs(spec, conversion: Conversion) -> str:
    want = {n: tuple(s) for n, s in conversion.metadata["outputs"].items()}
    got = {o.name: tuple(o.type.multiArrayType.shape) for o in spec.description.output}
    if list(got) != list(conversion.module.output_names) or got != want:
        raise EdgeDinoError(f"Core ML outputs are {got}, expected {want} in the order {conversion.module.output_names}")
    return "outputs: " + ", ".join(f"{n} {s}" for n, s in got.items())


def _weights(ops, weight_inputs: dict) -> dict:
    """Weight var name -> the op producing it, for every constant conv/linear/matmul weight input."""
    producer = {out.name: op for op in ops for out in op.outputs}
    names = {n for op in ops for key in weight_inputs.get(op.type, ()) for n in input_names(op, key)}
    return {n: producer[n] for n in names if producer[n].type == "const" or producer[n].type.startswith("constexpr_")}


def stored_precision(path: Path, weight_inputs: dict) -> str:
    """The precision a package's ops and weights show: palettize4 (look-up tables), int8 (activations quantized),
    int8-weights (int8 weights only), fp16 or fp32 (the type of its float weights)."""
    from edgedino.export.coreml.interpreter.package import read_spec

    ops = main_ops(read_spec(path))
    kinds = {op.type for op in ops}
    if "constexpr_lut_to_dense" in kinds:
        return "palettize4"
    if "quantize" in kinds:
        return "int8"
    if kinds & set(LINEAR_OPS):
        return "int8-weights"
    floats = {_mil_type(op.outputs[0].type.tensorType) for op in _weights(ops, weight_inputs).values()}
    return "fp16" if "FLOAT16" in floats else "fp32"


def _check_constexpr_targets(ops, weight_inputs: dict) -> None:
    """Every decompression op must feed a weight input (or another decompression op), nothing else."""
    readers = uses(ops)
    for op in ops:
        if op.type.startswith("constexpr_"):
            bad = [(t, k) for t, k in readers[op.outputs[0].name]
                   if not t.startswith("constexpr_") and k not in weight_inputs.get(t, ())]
            if bad:
                raise EdgeDinoError(f"Core ML compressed {op.outputs[0].name!r}, which is not a weight: "
                                    f"it feeds {', '.join(sorted({f'{t}.{k}' for t, k in bad}))}")


def _check_weights(ops, precision: str, weight_inputs: dict, min_size: int, kept: Callable[[str], bool]) -> str:
    """Weights compressed as the precision asks (and only weights, and none of a layer kept in float); the float
    ones in the compute type."""
    _check_constexpr_targets(ops, weight_inputs)
    want = COMPRESSION[precision]
    weights = _weights(ops, weight_inputs)
    compressed = {n: op for n, op in weights.items() if op.type.startswith("constexpr_")}
    plain = {n: op for n, op in weights.items() if n not in compressed}
    if any(kept(n) for n in compressed):
        raise EdgeDinoError(f"Core ML {precision}: compressed weights of layers kept in float: "
                            f"{sorted(n for n in compressed if kept(n))[:3]}")
    missed = [n for n, op in plain.items() if want and math.prod(_dims(op)) > min_size and not kept(n)]
    wrong = [n for n, op in compressed.items() if op.type not in want]
    if not weights or missed or wrong or (want and not compressed):
        expected = " or ".join(want) or "no compression"
        found = Counter(op.type for op in compressed.values())
        raise EdgeDinoError(f"Core ML {precision}: expected {expected} on every weight over {min_size} elements; "
                            f"found {dict(found) or 'no compression'}, {len(missed)} large weights uncompressed "
                            f"{sorted(missed)[:3]}")
    float_type = "FLOAT32" if precision == "fp32" else "FLOAT16"
    if any(_mil_type(op.outputs[0].type.tensorType) != float_type for op in plain.values()):
        raise EdgeDinoError(f"Core ML {precision}: float weights are not all {float_type.lower()}")
    if not compressed:
        return f"weights: {len(plain)} {float_type.lower()}, none compressed" + _check_activations(ops, precision)
    kinds = ", ".join(f"{k} x{v}" for k, v in Counter(op.type for op in compressed.values()).items())
    floats = sum(1 for n in plain if kept(n))
    line = (f"weights: {len(compressed)} compressed ({kinds}; {_detail(ops)}), "
            f"{len(plain) - floats} of <= {min_size} elements kept {float_type.lower()}"
            + (f", {floats} of layers kept in float" if floats else ""))
    return line + _check_activations(ops, precision)


def _operand(op, key: str, producer: dict):
    """A constexpr operand's tensor type: an attribute (iOS16 ops) or an input, inline or from a const (iOS18)."""
    if key in op.attributes:
        return op.attributes[key].type.tensorType
    if key not in op.inputs:
        return None
    arg = op.inputs[key].arguments[0]
    return producer[arg.name].outputs[0].type.tensorType if arg.name else arg.value.type.tensorType


def _detail(ops) -> str:
    """The stored form: int8 data, or LUT entries (16 for 4-bit)."""
    producer = {out.name: op for op in ops for out in op.outputs}
    luts = [_operand(op, "lut", producer) for op in ops if op.type == "constexpr_lut_to_dense"]
    if luts:
        entries = {lut.dimensions[-2 if lut.rank > 1 else 0].constant.size for lut in luts}
        if entries != {16}:
            raise EdgeDinoError(f"Core ML palettize4: look-up tables have {sorted(entries)} entries, expected 16")
        return "16-entry look-up tables"
    data = {_mil_type(t) for op in ops if op.type in LINEAR_OPS
            for t in (_operand(op, "quantized_data", producer), _operand(op, "data", producer)) if t is not None}
    if not data or not data <= set(INT8):
        raise EdgeDinoError(f"Core ML int8: quantized weight data has MIL types {sorted(data)}, expected int8")
    return "int8 data"


def _check_activations(ops, precision: str) -> str:
    """int8 must quantize activations (quantize/dequantize pairs); other precisions must not."""
    count = Counter(op.type for op in ops if op.type in ("quantize", "dequantize"))
    if (precision == "int8") != (count["quantize"] > 0 and count["dequantize"] > 0):
        raise EdgeDinoError(f"Core ML {precision}: activation quantize/dequantize ops {dict(count) or 'none'}")
    return f"; activations int8 ({count['quantize']} quantize, {count['dequantize']} dequantize)" if count else ""


def _check_rope(spec, path: Path, conversion: Conversion) -> str:
    """The RoPE sin/cos tables must be stored as plain float constants, not compressed."""
    from edgedino.export.coreml.interpreter.package import Blobs, constant, shape_of
    from edgedino.runtime.coreml import model_files

    rope = getattr(conversion.module.backbone, "rope_embed", None)
    if rope is None or rope.frozen_hw is None:
        return "RoPE: none in this model"
    tables = {"sin": rope.frozen_sin.numpy(), "cos": rope.frozen_cos.numpy()}
    ops = main_ops(spec)
    readers, blobs = uses(ops), Blobs(model_files(path)[1])
    for kind, table in tables.items():
        plain = [op for op in ops if op.type == "const" and shape_of(op.outputs[0].type.tensorType) == table.shape
                 and not any(t.startswith("constexpr_") for t, _ in readers[op.outputs[0].name])]
        if not any(np.allclose(constant(op.attributes["val"], blobs).astype(np.float32), table, atol=2e-3)
                   for op in plain):
            raise EdgeDinoError(f"Core ML package: the RoPE {kind} table {table.shape} is not a plain constant "
                                "(compressed?)")
    return f"RoPE: sin/cos tables {tables['sin'].shape} stored uncompressed"


def _check_metadata(spec, metadata: dict) -> str:
    meta = spec.description.metadata
    if METADATA_KEY not in meta.userDefined:
        raise EdgeDinoError(f"Core ML package has no {METADATA_KEY!r} metadata")
    if json.loads(meta.userDefined[METADATA_KEY]) != metadata or meta.author != "edgedino":
        raise EdgeDinoError("Core ML package metadata does not round-trip")
    if meta.license != str(metadata.get("license", "")):
        raise EdgeDinoError(f"Core ML package license {meta.license!r} is not {metadata.get('license')!r}")
    return f"metadata: {len(metadata)} keys round-trip, author {meta.author}, version {meta.versionString}"
