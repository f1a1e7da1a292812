"""ONNX: torch.onnx (dynamo) export, full checker, fp16 conversion, onnxruntime int8 quantization.

Quantization choices, measured on this AVX2 CPU (no VNNI):
- Only MatMul (and Conv for int8) are quantized. LayerNorm, Softmax, GELU, the residual adds and the
  RoPE arithmetic stay in float: they are cheap, and int8 there costs accuracy for no speed. So do attention's
  activation x activation MatMuls: quantized, they turn the softmax into onnxruntime's slow QLinearSoftmax.
- reduce_range=True (7-bit weights): without VNNI the u8 x s8 multiply-add saturates in 16 bits.
- int8-weights quantizes MatMul and the dense Conv (ConvNeXt's deploy form has its pointwise layers as 1x1
  Conv), not the depthwise Conv: dynamic int8 ConvNeXt depthwise convolutions ran several times slower.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from edgedino.export.target import Conversion, Int8Scheme, Target, match_layers, quiet_converters, register
from edgedino.runtime.base import METADATA_KEY

OPSET = 20  # GELU as one Gelu node, which onnxruntime (>= 1.17) runs fused; at 18 it was Div, Erf, Add, Mul, Mul


def _export_fp32(conversion: Conversion, path: Path) -> None:
    module = conversion.module
    # A dynamic batch is traced with an example of 2: torch.export specialises dimensions of size 1.
    dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=256)}} if conversion.spec.dynamic else None
    example = module.example(2 if conversion.spec.dynamic else None)
    with quiet_converters("torch.onnx"):  # "torchvision is not installed" notes
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=OPSET, optimize=True,
                                    input_names=["image"], output_names=list(module.output_names),
                                    dynamic_shapes=dynamic, verbose=False)
    program.save(str(path))


class _Calibration:
    """onnxruntime's CalibrationDataReader over (N, batch, ...) calibration batches."""

    def __init__(self, batches: np.ndarray):
        self._iter = iter(batches)

    def get_next(self):
        batch = next(self._iter, None)
        return None if batch is None else {"image": batch}

    def rewind(self):
        raise NotImplementedError


def _depthwise_convs(graph) -> list[str]:
    """Names of the grouped (depthwise) Conv nodes, which dynamic int8 runs several times slower than float."""
    return [n.name for n in graph.node if n.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in n.attribute)]


def _activation_matmuls(graph) -> list[str]:
    """Names of the MatMul nodes whose two inputs are both computed (attention's QKᵀ and AV), kept in float by
    int8: quantized, onnxruntime fuses the softmax between them into QLinearSoftmax, which took 17 % of ViT-S/16
    int8 at 224 and 40 % at 448 (benchmark --profile); float attention ran 1.1x (224) and 1.3-1.4x (448) faster
    end to end at the same parity."""
    constant = {i.name for i in graph.initializer}
    constant |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not constant & set(n.input)]


def _float_nodes(graph, layers: tuple[str, ...]) -> list[str]:
    """Names of the MatMul / Conv nodes of the backbone layers to keep in float, found by the torch module scopes
    the exporter records on every node."""
    import ast

    if not layers:
        return []
    scopes = {}
    for node in graph.node:
        if node.op_type in ("MatMul", "Conv", "Gemm"):
            meta = {p.key: p.value for p in node.metadata_props}
            scopes[node.name] = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
    return match_layers("onnx", layers, scopes, lambda layer, name: f"backbone.{layer}" in scopes[name])


def _quantize(conversion: Conversion, src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    graph = onnx.load(str(src), load_external_data=False).graph  # read once: the nodes to keep float are named here
    if conversion.spec.precision == "int8-weights":
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Conv"], per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=_depthwise_convs(graph))
        return
    float_nodes = _float_nodes(graph, conversion.spec.quant.float_layers) + _activation_matmuls(graph)
    quantize_static(src, dst, _Calibration(conversion.calibration_batches()), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul", "Conv"], per_channel=True, reduce_range=True,
                    nodes_to_exclude=float_nodes,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)


def _to_fp16(src: Path, dst: Path) -> None:
    """float16 weights and compute, float32 input/output (the converter's casts are re-sorted topologically)."""
    import onnx
    import onnx_ir
    from onnx_ir.passes.common import TopologicalSortPass
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx_ir.from_proto(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True))
    TopologicalSortPass()(model)
    onnx.save(onnx_ir.to_proto(model), str(dst))


def _finish(path: Path, metadata: dict) -> None:
    """Embed the metadata and run the full checker (with shape inference)."""
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    metadata["converter"] = {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET}
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
    model.producer_name, model.producer_version = "edgedino", metadata["versions"]["edgedino"]
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)


@register
class OnnxTarget(Target):
    name = "onnx"
    precisions = ("fp32", "fp16", "int8-weights", "int8")
    packages = ("onnx", "onnxscript", "onnxruntime")
    dynamic_shapes = True
    int8 = Int8Scheme(outputs=True, weight_bits=7)  # QDQ quantizes each MatMul/Conv output too; reduce_range

    def convert(self, conversion: Conversion, path: Path) -> None:
        if conversion.spec.precision == "fp32":
            _export_fp32(conversion, path)
        else:
            fp32 = path.with_name("fp32_" + path.name)
            _export_fp32(conversion, fp32)
            if conversion.spec.precision == "fp16":
                _to_fp16(fp32, path)
            else:
                with quiet_converters(""):  # onnxruntime logs a pre-processing tip on the root logger
                    _quantize(conversion, fp32, path)
            fp32.unlink()
        _finish(path, conversion.metadata)

    def stored_precision(self, path: Path) -> str:
        """int8: activations quantized (QuantizeLinear); int8-weights: dynamic int8 MatMul; fp16: float16 weights."""
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        if "QuantizeLinear" in ops:
            return "int8"
        if ops & {"DynamicQuantizeLinear", "MatMulInteger"}:
            return "int8-weights"
        return "fp16" if any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer) else "fp32"

    def static_checks(self, conversion: Conversion, path: Path) -> list[str]:
        return [f"onnx.checker full check passed (opset {OPSET})"]
