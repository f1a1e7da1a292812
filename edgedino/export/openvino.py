"""OpenVINO IR (.xml + .bin): convert_model from PyTorch, fp16 compression, NNCF int8.

int8 uses NNCF post-training quantization with model_type=TRANSFORMER (keeps LayerNorm, Softmax and
GELU paths in float) and the overflow fix, which CPUs without VNNI (AVX2 only) need to avoid
saturating the 16-bit intermediate of the u8 x s8 multiply-add. Default NNCF settings measured
CLS cosine 0.78 on a random ViT-S here. int8-weights is NNCF weight compression (INT8, float compute).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgedino.export import openvino_pair
from edgedino.export.target import Conversion, Int8Scheme, Target, match_layers, quiet_converters, register
from edgedino.runtime.base import METADATA_KEY


def _convert(conversion: Conversion):
    import openvino as ov

    module = conversion.module
    with quiet_converters():  # TracerWarnings about the size checks, which are constant here
        model = ov.convert_model(module, example_input=module.example(), input=[tuple(module.input_shape())])
    model.inputs[0].get_tensor().set_names({"image"})
    for out, name in zip(model.outputs, module.output_names, strict=True):
        out.get_tensor().set_names({name})
    return model


def _float_ops(model, layers: tuple[str, ...]) -> list[str]:
    """Friendly names of the MatMul / convolution ops of the backbone layers to keep in float (convert_model names
    each op after the torch module it came from)."""
    ops = [op.get_friendly_name() for op in model.get_ordered_ops()
           if op.get_type_name() in ("MatMul", "Convolution", "GroupConvolution")]
    return match_layers("openvino", layers, ops, lambda layer, name: name.startswith(f"__module.backbone.{layer}/"))


def _int8(model, batches: np.ndarray, float_layers: tuple[str, ...] = ()):
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    return nncf.quantize(
        model, nncf.Dataset(list(batches)), subset_size=len(batches),
        model_type=nncf.ModelType.TRANSFORMER, ignored_scope=nncf.IgnoredScope(names=_float_ops(model, float_layers)),
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE),
    )


def _int8_weights(model):
    import nncf

    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)


@register
class OpenVINOTarget(Target):
    name = "openvino"
    precisions = ("fp32", "fp16", "int8-weights", "int8")
    packages = ("openvino", "nncf")
    int8 = Int8Scheme(weight_bits=7)  # the overflow fix quantizes weights to 7 bits

    def convert(self, conversion: Conversion, path: Path) -> None:
        import nncf
        import openvino as ov

        model = _convert(conversion)
        precision = conversion.spec.precision
        with quiet_converters("nncf"):
            if precision == "int8":
                model = _int8(model, conversion.calibration_batches(), conversion.spec.quant.float_layers)
            elif precision == "int8-weights":
                model = _int8_weights(model)
        conversion.metadata["converter"] = {"openvino": ov.get_version().split("-")[0], "nncf": nncf.__version__}
        model.set_rt_info(json.dumps(conversion.metadata), [METADATA_KEY])
        ov.save_model(model, str(path), compress_to_fp16=precision == "fp16")

    def publish(self, staged: Path, final: Path) -> None:
        """The .bin first, as a superset the published .xml can still read, then the .xml (see openvino_pair)."""
        openvino_pair.publish(staged, final)

    def stored_precision(self, path: Path) -> str:
        """int8: FakeQuantize on activations; int8-weights: 8-bit weight constants; fp16: float16 weights."""
        from edgedino.runtime.openvino import core

        ops = core().read_model(str(path)).get_ops()
        consts = {o.get_element_type().get_type_name() for o in ops if o.get_type_name() == "Constant"}
        if any(o.get_type_name() == "FakeQuantize" for o in ops):
            return "int8"
        if consts & {"u8", "i8"}:
            return "int8-weights"
        return "fp16" if "f16" in consts else "fp32"

    def size(self, path: Path) -> int:
        return openvino_pair.ir_size(path)
