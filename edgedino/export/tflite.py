"""TFLite (LiteRT): litert-torch conversion, ai-edge-quantizer quantization, metadata inside the flatbuffer.

Output names: the converted graph returns a dict, so the signature's outputs are named "cls", "patch_tokens"
(and "registers"), and its input "image"; the runtime reads outputs by those names, and falls back to the
order of metadata["outputs"] for a file whose names were lost.

Precisions (all through ai-edge-quantizer on the fp32 flatbuffer):
- fp16: float16 weights of the matmuls/convolutions, dequantized to float32 at load; float32 compute on CPU.
- int8-weights: dynamic range, int8 channel-wise weights, activations quantized on the fly by the kernels.
- int8: static W8A8 (int8 channel-wise weights, int8 per-tensor activations calibrated on conversion.calib, one
  sample at a time) for FULLY_CONNECTED and CONV_2D only; everything else stays float. Measured on this
  x86 CPU (XNNPACK, 2 threads, 224x224):
  - int8 BATCH_MATMUL (attention) is not accelerated: vits16 79 ms with it, 21 ms without.
  - int8 DEPTHWISE_CONV_2D is slow: convnext_tiny 331 ms with it, 66 ms without (fp32: 124 ms).
    (Measured before the 7x7 depthwise kernels were exported in bands, see edgedino.models.convnext_deploy.)
  - "full integer" (ai-edge-quantizer's static_wi8_ai8) was no faster and lost the cls token: a per-tensor
    scale shared with the patch tokens rounds the small cls token away (cls cosine 0.94 on vits16).
  The virtual INPUT and OUTPUT ops are pinned unquantized, so the artifact keeps its float32 (or uint8)
  input and float32 outputs; the stock static recipe makes them int8, which a float pipeline cannot feed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from edgedino.errors import EdgeDinoError
from edgedino.export.module import ExportModule
from edgedino.export.target import Conversion, Int8Scheme, Target, match_layers, register
from edgedino.models.convnext_deploy import banded_depthwise
from edgedino.runtime.base import METADATA_KEY

SIGNATURE = "serving_default"
INPUT_NAME = "image"
INT8_OPS = ("FULLY_CONNECTED", "CONV_2D")  # see the module docstring for why only these
# A task head (export --head) stays float in int8: its output range calibrates too narrow (the quantizer averages
# per-sample ranges), which clipped a digits head's logits at 15 where PyTorch gave 37 (logits cosine 0.958).
HEAD_TENSORS = r".*(Head_head|logits).*"


class _Named(nn.Module):
    """The export module with dict outputs and a keyword input, so the TFLite signature carries the names."""

    def __init__(self, module: ExportModule):
        super().__init__()
        self.module = module
        self.eval()

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        return dict(zip(self.module.output_names, self.module(image), strict=True))


def _convert_fp32(module: ExportModule, path: Path) -> None:
    """Trace and lower the module with litert-torch into a float32 .tflite."""
    import litert_torch

    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its progress lines would interleave with ours
    edge = litert_torch.convert(_Named(module), sample_kwargs={INPUT_NAME: module.example()})
    edge.export(str(path))


def layer_scope(module: ExportModule, layer: str) -> str:
    """The scope litert-torch writes into the tensor names of a backbone layer: each module called on the way as
    '<module>.<class>_<attribute or index>', joined by '/'. A ModuleList (only iterated) and the backbone (its
    forward_features is called directly) leave no trace; the trailing ';' ends the layer's own name."""
    parts, obj = [], module.backbone
    for part in layer.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        if not isinstance(obj, nn.ModuleList):
            parts.append(f"{type(obj).__module__}.{type(obj).__qualname__}_{part}")
    return "/" + "/".join(parts) + ";"


def graph_ops(path: Path) -> tuple[object, list[tuple[str, object]]]:
    """The main graph of a .tflite file and each of its operators with its builtin name ("CONV_2D", ...)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    return graph, [(codes.get(model.operatorCodes[op.opcodeIndex].builtinCode), op) for op in graph.operators]


def _float_scopes(module: ExportModule, src: Path, layers: tuple[str, ...]) -> list[str]:
    """Regexes of the op scopes of the layers to keep in float, each checked against the float32 model's ops."""
    import re

    if not layers:
        return []
    graph, ops = graph_ops(src)
    scopes = [";".join(graph.tensors[i].name.decode() for i in op.outputs) + ";" for name, op in ops
              if name in (*INT8_OPS, "DEPTHWISE_CONV_2D")]
    wanted = {layer: layer_scope(module, layer) for layer in layers}
    match_layers("tflite", layers, scopes, lambda layer, scope: wanted[layer] in scope)
    return [re.escape(wanted[layer]) for layer in layers]


def _recipe(precision: str, float_scopes: list[str] = ()) -> list:
    """The ai-edge-quantizer recipe for one precision; ops whose scope matches `float_scopes` stay float."""
    from ai_edge_quantizer import qtyping, recipe, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    ops = qtyping.TFLOperationName
    if precision == "int8-weights":
        return recipe.dynamic_wi8_afp32()
    manager = recipe_manager.RecipeManager()
    if precision == "fp16":
        manager.add_weight_only_config(".*", ops.ALL_SUPPORTED, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    else:
        for op in INT8_OPS:
            manager.add_static_config(".*", ops(op), activation_num_bits=8, weight_num_bits=8)
        for edge in (ops.INPUT, ops.OUTPUT):
            manager.add_quantization_config(".*", edge, algorithm_key=AlgorithmName.NO_QUANTIZE)
        manager.add_quantization_config(HEAD_TENSORS, ops.FULLY_CONNECTED, algorithm_key=AlgorithmName.NO_QUANTIZE)
        for scope in float_scopes:
            for op in INT8_OPS:
                manager.add_quantization_config(scope, ops(op), algorithm_key=AlgorithmName.NO_QUANTIZE)
    return manager.get_quantization_recipe()


def _calibration(batches: np.ndarray) -> dict[str, list[dict[str, np.ndarray]]]:
    """The calibration set as ai-edge-quantizer reads it: one (batch, ...) input per signature call."""
    return {SIGNATURE: [{INPUT_NAME: np.ascontiguousarray(batch)} for batch in batches]}


def _quantize(src: Path, dst: Path, precision: str, calibration: dict | None, float_scopes: list[str] = ()) -> None:
    """Quantize a float32 .tflite into `dst` with ai-edge-quantizer."""
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(str(src), _recipe(precision, float_scopes))
    ranges = qt.calibrate(calibration, num_threads=os.cpu_count() or 1) if calibration else None
    dst.write_bytes(qt.quantize(ranges, enable_progress_report=False).quantized_model)


def _inline_buffers(model, data: bytes) -> None:
    """Move buffers the quantizer appended after the flatbuffer (offset/size) back inside it."""
    for buffer in model.buffers or []:
        if buffer.offset > 1:
            buffer.data = np.frombuffer(data, np.uint8, buffer.size, buffer.offset)
            buffer.offset = buffer.size = 0


def embed_metadata(path: Path, metadata: dict) -> None:
    """Store `metadata` as JSON in a Metadata entry named "edgedino" (replacing one already there).

    The model is repacked with every buffer inside the flatbuffer, which caps it at 2 GB.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    if len(data) >= 2**31:
        raise EdgeDinoError(f"{path.name} is over 2 GB; edgedino cannot embed metadata in it")
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    _inline_buffers(model, data)
    entry = next((m for m in model.metadata or [] if m.name == METADATA_KEY.encode()), None)
    if entry is None:
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_KEY, len(model.buffers)
        model.metadata = [*(model.metadata or []), entry]
        model.buffers.append(schema.BufferT())
    model.buffers[entry.buffer].data = np.frombuffer(json.dumps(metadata).encode("utf-8"), np.uint8)
    builder = flatbuffers.Builder(len(data) + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


def _converter_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name.replace("_", "-")) for name in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")}


@register
class TfliteTarget(Target):
    name = "tflite"
    precisions = ("fp32", "fp16", "int8-weights", "int8")
    packages = ("litert_torch", "ai_edge_litert")
    # FULLY_CONNECTED / CONV_2D write int8 outputs; depthwise stays float (INT8_OPS); the converter folds a
    # LayerNorm's gain and bias into the next FULLY_CONNECTED / CONV_2D (its weights become W * g)
    int8 = Int8Scheme(outputs=True, depthwise=False, norm_folded=True)
    not_on = {"win32": "Windows"}  # litert-torch needs litert-converter, which has no Windows wheels

    def stored_precision(self, path: Path) -> str:
        """int8: quantized activations; int8-weights: int8 weight tensors only; fp16: float16 weight tensors."""
        from ai_edge_litert import schema_py_generated as schema

        data = path.read_bytes()
        model = schema.Model.GetRootAs(data, 0)
        graph = model.Subgraphs(0)
        kinds = set()
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            buffer = model.Buffers(tensor.Buffer())
            kinds.add((tensor.Type(), buffer.DataLength() > 0 or buffer.Size() > 0))
        types = schema.TensorType
        if (types.INT8, False) in kinds:
            return "int8"
        if (types.INT8, True) in kinds:
            return "int8-weights"
        return "fp16" if (types.FLOAT16, True) in kinds else "fp32"

    def convert(self, conversion: Conversion, path: Path) -> None:
        """Convert in float32 (large depthwise kernels in bands XNNPACK runs directly), quantize to the spec's
        precision, then embed the metadata."""
        precision = conversion.spec.precision
        calibration = _calibration(conversion.calibration_batches()) if precision == "int8" else None
        module = banded_depthwise(conversion.module)
        if precision == "fp32":
            _convert_fp32(module, path)
        else:
            fp32 = path.with_name("fp32_" + path.name)
            try:
                _convert_fp32(module, fp32)
                scopes = _float_scopes(module, fp32, conversion.spec.quant.float_layers)
                _quantize(fp32, path, precision, calibration, scopes)
            finally:
                fp32.unlink(missing_ok=True)
        conversion.metadata["converter"] = _converter_versions()
        embed_metadata(path, conversion.metadata)
