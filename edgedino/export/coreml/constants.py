"""The constants of a Core ML ML program and the op inputs that read them, from its spec.

edgedino reads these from the protobuf rather than with coremltools' `get_weights_metadata`: that function
assumes every input of an op that reads a constant is a single var, and fails ("'list' object has no
attribute 'val'") when one is a list, such as concat's `values`. The class and register tokens are such
constants (concatenated with the patch tokens): the RoPE check looks for constants as small as the sin/cos
tables, which at small inputs (vit_test at 32x32, ViT-S/16 at 64x64) are no larger than the tokens, and
ViT-B/16's four registers (3072 values) are over the weight-compression threshold at every size.
"""

from __future__ import annotations

import math
from collections import defaultdict


def main_ops(spec) -> list:
    """The operations of an ML program spec's main function."""
    fn = spec.mlProgram.functions["main"]
    return list(fn.block_specializations[fn.opset].operations)


def input_names(op, key: str) -> list[str]:
    """The vars an op reads through input `key`: one for most inputs, several for a list such as concat's values."""
    return [a.name for a in op.inputs[key].arguments if a.name] if key in op.inputs else []


def uses(ops) -> dict[str, list[tuple[str, str]]]:
    """Var name -> (op type, input name) for every op input that reads it."""
    found = defaultdict(list)
    for op in ops:
        for key in op.inputs:
            for name in input_names(op, key):
                found[name].append((op.type, key))
    return found


def size(op) -> int:
    """Element count of an op's first output (0 where a dimension is not a constant)."""
    dims = op.outputs[0].type.tensorType.dimensions
    if any(d.WhichOneof("dimension") != "constant" for d in dims):
        return 0
    return math.prod(d.constant.size for d in dims)


def op_name(op) -> str:
    """The op's name, as coremltools' compression configs key it (its output var's name when it has none)."""
    name = op.attributes.get("name")
    return name.immediateValue.tensor.strings.values[0] if name is not None else op.outputs[0].name


def weight_names(spec, weight_inputs: dict, min_size: int) -> list[str]:
    """Names of the constants of at least `min_size` elements read only as a weight (`weight_inputs`: op -> inputs)."""
    ops = main_ops(spec)
    readers = uses(ops)
    return [op_name(op) for op in ops
            if op.type == "const" and size(op) >= min_size and readers[op.outputs[0].name]
            and all(key in weight_inputs.get(kind, ()) for kind, key in readers[op.outputs[0].name])]
