"""Core ML target: torch.export -> ML program (.mlpackage) with fp16, int8 or 4-bit palettized weights.

Only conv/linear/matmul weights are compressed, never other constants such as the RoPE sin/cos tables.
Core ML cannot run on Linux, so edgedino's reference interpreter of the ML program does what Core ML would:
it measures int8 activation ranges (edgedino.export.coreml.calibration) instead of coremltools' calibration, which
needs macOS, and checks every saved package numerically against PyTorch (edgedino.export.coreml.numeric_check).

int8 quantizes the activations that enter conv and linear only, as the ONNX, OpenVINO and TFLite targets do;
the residual adds stay float16. coremltools would also quantize `add`, which breaks models whose LayerScale is
small (default init, distilled students): a per-tensor int8 residual stream rounds the small cls/register tokens
away (vit_test cls cosine 0.94), and its scale normalisation of a quantized add (dequantize scales s_x/s_y,
s_y -> 1) puts the residual on a scale up to 35040x its own when the LayerScale branch's range is tiny, so the
float16 add overflows to inf (convnext_test patch cosine 0.66).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from edgedino.errors import EdgeDinoError
from edgedino.export.coreml.calibration import activation_ranges
from edgedino.export.coreml.constants import weight_names
from edgedino.export.coreml.static_checks import check_package, stored_precision
from edgedino.export.spec import PRECISIONS
from edgedino.export.target import Conversion, Int8Scheme, Target, match_layers, register
from edgedino.runtime.base import METADATA_KEY
from edgedino.version import __version__

if TYPE_CHECKING:
    from coremltools.converters.mil._deployment_compatibility import AvailableTarget

INPUT_NAME = "image"
MIN_TARGET = "iOS17"  # int8 activations (quantize/dequantize ops) need the iOS17 opset
WEIGHT_INPUTS = {"conv": ("weight",), "linear": ("weight",), "matmul": ("x", "y")}  # op -> inputs that are weights
MIN_WEIGHT_SIZE = 2048  # coremltools' default: smaller weights stay float, compressing them saves nothing
# int8 activations into these ops only: the residual adds (and pools) stay float16 (see the module docstring).
QUANTIZED_OPS = ("conv", "linear")


@register
class CoreMLTarget(Target):
    name = "coreml"
    precisions = PRECISIONS
    packages = ("coremltools",)
    input_formats = ("float32",)  # Core ML has no uint8 tensors; camera frames would need an ImageType input
    int8 = Int8Scheme(outputs=True, symmetric=True)  # linear_symmetric quantize/dequantize pairs on both sides

    def ours(self, path: Path) -> bool:
        """An .mlpackage with edgedino metadata: an earlier export, which a new one may replace."""
        from edgedino.runtime.coreml import read_metadata

        try:
            return (path / "Manifest.json").is_file() and bool(read_metadata(path))
        except (EdgeDinoError, ValueError):  # unreadable, or metadata that is not JSON: not ours
            return False

    def convert(self, conversion: Conversion, path: Path) -> None:
        """Export, convert to an ML program, compress as the precision asks, embed metadata, save."""
        import coremltools as ct

        target = deployment_target(conversion.spec.options)
        _check_convertible(conversion)
        prog = _to_mil(conversion.module, conversion.spec.precision, target)
        float_layers = conversion.spec.quant.float_layers
        if conversion.spec.precision == "int8":
            _quantize_activations(prog, conversion.calib, float_layers)
        model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                           pass_pipeline=ct.PassPipeline.EMPTY)
        model = _compress_weights(model, conversion.spec.precision, float_layers)
        _set_metadata(model, conversion)
        model.save(str(path))

    def runtimes(self, path: Path) -> list:
        """The reference interpreter of the ML program on every OS, and Apple's runtime as well on macOS."""
        from edgedino.export.coreml.numeric_check import runtimes

        return runtimes(path)

    def stored_precision(self, path: Path) -> str:
        return stored_precision(path, WEIGHT_INPUTS)

    def static_checks(self, conversion: Conversion, path: Path) -> list[str]:
        """Spec, input/outputs, weight compression, RoPE tables and metadata."""
        layers = conversion.spec.quant.float_layers
        return check_package(conversion, path, embedded_metadata(conversion), WEIGHT_INPUTS, MIN_WEIGHT_SIZE,
                             kept=lambda name: any(_is_weight_of(layer, name) for layer in layers))


def deployment_target(options: dict) -> AvailableTarget:
    """The ct.target named by options["minimum_deployment_target"] (default iOS17); iOS17 or newer."""
    import coremltools as ct

    name = options.get("minimum_deployment_target", MIN_TARGET)
    known = {n: t for n, t in ct.target.__members__.items() if t >= ct.target.iOS17}
    if name not in known:
        raise EdgeDinoError(f"Core ML minimum_deployment_target {name!r} is not supported; "
                            f"use one of {', '.join(known)}")
    return known[name]


def embedded_metadata(conversion: Conversion) -> dict:
    """conversion.metadata plus the converter versions: what the package stores under METADATA_KEY."""
    import coremltools as ct

    converter = {**conversion.metadata.get("converter", {}), "coremltools": ct.__version__, "torch": torch.__version__}
    return {**conversion.metadata, "converter": converter}


def _check_convertible(conversion: Conversion) -> None:
    """Refuse, before any work, what Core ML cannot express."""
    if conversion.spec.input_format == "uint8":
        raise EdgeDinoError("Core ML cannot take a uint8 tensor input (MLMultiArray holds float16/32/64 and "
                            "int32 only; int8 from iOS26): export Core ML with input_format float32")
    if conversion.spec.precision == "int8":
        want = tuple(conversion.module.input_shape()[1:])
        if conversion.calib is None or len(conversion.calib) == 0 or tuple(conversion.calib.shape[1:]) != want:
            got = None if conversion.calib is None else conversion.calib.shape
            raise EdgeDinoError(f"Core ML int8 needs calibration images of shape (N, {want}), got {got}")


def _to_mil(module: torch.nn.Module, precision: str, target):
    """torch.export the module and convert it to a MIL program (main passes run, backend not yet)."""
    import coremltools as ct

    example = module.example()
    exported = torch.export.export(module, (example,)).run_decompositions({})
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    # float32 I/O stated explicitly: left implicit, an fp16 program converted in two steps gets fp16 I/O.
    inputs = [ct.TensorType(name=INPUT_NAME, shape=tuple(example.shape), dtype=np.float32)]
    outputs = [ct.TensorType(name=n, dtype=np.float32) for n in module.output_names]
    return ct.convert(exported, inputs=inputs, outputs=outputs, convert_to="milinternal",
                      minimum_deployment_target=target, compute_precision=compute)


def layer_weight(layer: str) -> str:
    """The name torch.export gives a backbone layer's weight constant (converters may append e.g. '_to_fp16')."""
    return "p_backbone_" + layer.replace(".", "_") + "_weight"


def _is_weight_of(layer: str, name: str) -> bool:
    return name == layer_weight(layer) or name.startswith(layer_weight(layer) + "_to_")


def _float_ops(prog, layers: tuple[str, ...]) -> list[str]:
    """Names of the conv/linear ops whose weight belongs to a layer kept in float."""
    weights = {op.name: op.inputs["weight"].name for op in prog.functions["main"].operations
               if op.op_type in QUANTIZED_OPS}
    return match_layers("coreml", layers, weights, lambda layer, op: _is_weight_of(layer, weights[op]))


def _quantize_activations(prog, calib, float_layers: tuple[str, ...] = ()) -> None:
    """Insert int8 quantize/dequantize pairs around conv/linear (QUANTIZED_OPS), with ranges measured on `calib`;
    the ops of `float_layers` (and a task head's) stay float16."""
    from coremltools.converters.mil.mil.passes.graph_pass import PassOption
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig

    int8 = OpLinearQuantizerConfig(mode="linear_symmetric")
    float_ops = _head_ops(prog) + _float_ops(prog, float_layers)
    config = OptimizationConfig(op_type_configs={op: int8 for op in QUANTIZED_OPS},
                                op_name_configs={name: None for name in float_ops})
    ranges = activation_ranges(prog, calib)
    for name in ("insert_prefix_quantize_dequantize_pair", "insert_suffix_quantize_dequantize_pair"):
        graph_pass = PASS_REGISTRY[f"compression::{name}"]
        graph_pass.set_options([PassOption("config", config), PassOption("activation_stats", ranges)])
        graph_pass(prog)
    PASS_REGISTRY["common::dequantize_quantize_pair_elimination"](prog)


def _head_ops(prog) -> list[str]:
    """Ops that take a task head's weights (edgedino.heads): they stay float in int8, as on the other targets,
    because the logits' calibrated range comes out too narrow and clips them."""
    return [op.name for op in prog.functions["main"].operations
            if any(v is not None and v.op is not None and v.op.op_type == "const" and "head_" in v.name
                   for v in op.inputs.values() if not isinstance(v, (list, tuple)))]


def _weight_config(precision: str):
    """The per-weight compressor for a precision, or None when weights stay float."""
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OpPalettizerConfig

    if precision in ("int8-weights", "int8"):
        return OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                       weight_threshold=MIN_WEIGHT_SIZE)
    if precision == "palettize4":
        return OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=MIN_WEIGHT_SIZE)
    return None


def _weight_names(model) -> list[str]:
    """Names of the constants that feed a conv/linear/matmul as its weight (not RoPE tables, biases, ...)."""
    return weight_names(model.get_spec(), WEIGHT_INPUTS, MIN_WEIGHT_SIZE)


def _compress_weights(model, precision: str, float_layers: tuple[str, ...] = ()):
    """Compress the selected weights by name; everything else, and the weights of `float_layers`, keeps its float
    type."""
    from coremltools.optimize.coreml import OptimizationConfig, linear_quantize_weights, palettize_weights

    op_config = _weight_config(precision)
    if op_config is None:
        return model
    names = _weight_names(model)
    kept = match_layers("coreml", float_layers, names, _is_weight_of)
    config = OptimizationConfig(op_name_configs={name: op_config for name in names if name not in kept})
    compress = palettize_weights if precision == "palettize4" else linear_quantize_weights
    return compress(model, config)


def _set_metadata(model, conversion: Conversion) -> None:
    """Embed the edgedino metadata (JSON) and fill Core ML's own description fields."""
    meta = embedded_metadata(conversion)
    model.user_defined_metadata[METADATA_KEY] = json.dumps(meta)
    model.author = "edgedino"
    model.license = str(meta.get("license", ""))
    model.version = str(meta.get("version", __version__))
    h, w = conversion.spec.imgsz
    model.short_description = (f"{meta.get('model', 'edgedino backbone')} {h}x{w} {conversion.spec.precision}: "
                               f"{INPUT_NAME} -> {', '.join(conversion.module.output_names)}")
