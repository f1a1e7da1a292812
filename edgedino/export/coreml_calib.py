"""Run a MIL program in PyTorch on Linux, where Core ML cannot: activation ranges for int8 calibration.

Covers the ops coremltools emits for edgedino's ViT and ConvNeXt; another op is an EdgeDinoError naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from edgedino.errors import EdgeDinoError

if TYPE_CHECKING:
    from coremltools.converters.mil.mil import Program

GELU = {"EXACT": "none", "TANH_APPROXIMATION": "tanh"}
# coremltools computes activation scales in float16: a range narrower than this would give a zero scale
# (e.g. LayerScale outputs of a freshly initialised model), so it is widened to it.
MIN_RANGE = 2 * 127 * 2.0**-24


def _ints(v) -> list[int]:
    return [int(i) for i in np.atleast_1d(v)]


def _slice(a: dict) -> Tensor:
    x = a["x"]
    n = x.dim()
    stride, zeros = a.get("stride", np.ones(n, int)), np.zeros(n, bool)
    bmask, emask, squeeze = (a.get(k, zeros) for k in ("begin_mask", "end_mask", "squeeze_mask"))
    begin, end = _ints(a["begin"]), _ints(a["end"])
    index = tuple(begin[i] if squeeze[i] else slice(None if bmask[i] else begin[i], None if emask[i] else end[i],
                                                     int(stride[i])) for i in range(n))
    return x[index]


def _conv(a: dict) -> Tensor:
    if a.get("pad_type", "valid") not in ("valid", "custom"):
        raise EdgeDinoError(f"MIL conv with pad_type {a['pad_type']!r} is not supported in calibration")
    top, bottom, left, right = _ints(a.get("pad", [0, 0, 0, 0]))
    x = F.pad(a["x"], (left, right, top, bottom))
    return F.conv2d(x, a["weight"], a.get("bias"), _ints(a["strides"]), 0, _ints(a["dilations"]), int(a["groups"]))


def _layer_norm(a: dict) -> Tensor:
    x, axes = a["x"], _ints(a["axes"])
    mean = x.mean(axes, keepdim=True)
    y = (x - mean) * torch.rsqrt((x - mean).square().mean(axes, keepdim=True) + float(a["epsilon"]))
    return y * a.get("gamma", 1.0) + a.get("beta", 0.0)


def _expand_dims(a: dict) -> Tensor:
    x = a["x"]
    for axis in sorted(_ints(a["axes"])):
        x = x.unsqueeze(axis)
    return x


def _matmul(a: dict) -> Tensor:
    x = a["x"].mT if a.get("transpose_x", False) else a["x"]
    return x @ (a["y"].mT if a.get("transpose_y", False) else a["y"])


OPS = {
    "add": lambda a: a["x"] + a["y"],
    "sub": lambda a: a["x"] - a["y"],
    "mul": lambda a: a["x"] * a["y"],
    "real_div": lambda a: a["x"] / a["y"],
    "linear": lambda a: F.linear(a["x"], a["weight"], a.get("bias")),
    "matmul": _matmul,
    "conv": _conv,
    "layer_norm": _layer_norm,
    "gelu": lambda a: F.gelu(a["x"], approximate=GELU[a.get("mode", "EXACT")]),
    "softmax": lambda a: torch.softmax(a["x"], int(a["axis"])),
    "scaled_dot_product_attention": lambda a: F.scaled_dot_product_attention(a["query"], a["key"], a["value"],
                                                                             a.get("attn_mask")),
    "transpose": lambda a: a["x"].permute(_ints(a["perm"])),
    "reshape": lambda a: a["x"].reshape(_ints(a["shape"])),
    "concat": lambda a: torch.cat(a["values"], int(a["axis"])),
    "split": lambda a: torch.split(a["x"], _ints(a["split_sizes"]), int(a["axis"])),
    "slice_by_index": _slice,
    "reduce_mean": lambda a: a["x"].mean(_ints(a["axes"]), keepdim=bool(a.get("keep_dims", False))),
    "expand_dims": _expand_dims,
    "cast": lambda a: a["x"],  # ranges are measured in float32 whatever the program's float type
}


def _value(var, env: dict):
    """A var's value: computed (env), or its constant (float arrays as float32 tensors)."""
    if isinstance(var, (tuple, list)):
        return [_value(v, env) for v in var]
    if var.name in env:
        return env[var.name]
    val = var.val
    if isinstance(val, np.ndarray) and val.dtype.kind == "f":
        return torch.from_numpy(val.astype(np.float32))
    return float(val) if isinstance(val, np.floating) else val


def run_program(prog: Program, x: np.ndarray) -> dict[str, Tensor]:
    """Every var of the program's main function, computed for one input (batch as the program fixes it)."""
    fn = prog.functions["main"]
    env = {name: torch.from_numpy(np.asarray(x, np.float32)) for name in fn.inputs}
    for op in fn.operations:
        if op.op_type == "const":
            continue
        if op.op_type not in OPS:
            raise EdgeDinoError(f"Core ML int8 calibration cannot evaluate MIL op {op.op_type!r} on Linux")
        out = OPS[op.op_type]({k: _value(v, env) for k, v in op.inputs.items()})
        for var, val in zip(op.outputs, out if isinstance(out, (tuple, list)) else (out,), strict=True):
            env[var.name] = val
    return env


@torch.no_grad()
def activation_ranges(prog: Program, calib: np.ndarray) -> dict[str, dict[str, float]]:
    """{var name: {"rmin", "rmax"}} over the calibration samples: coremltools' activation_stats format."""
    ranges: dict[str, dict[str, float]] = {}
    batch = next(iter(prog.functions["main"].inputs.values())).shape[0]
    for start in range(0, len(calib) - batch + 1, batch):
        for name, val in run_program(prog, calib[start:start + batch]).items():
            lo, hi = float(val.min()), float(val.max())
            seen = ranges.setdefault(name, {"rmin": lo, "rmax": hi})
            seen["rmin"], seen["rmax"] = min(seen["rmin"], lo), max(seen["rmax"], hi)
    for r in ranges.values():
        if max(-r["rmin"], r["rmax"]) < MIN_RANGE:
            r["rmin"], r["rmax"] = -MIN_RANGE, MIN_RANGE
    return ranges
