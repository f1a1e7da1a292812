"""MIL compute ops in numpy, as the ML program spec defines them.

Each op takes {input name: value} and returns its output(s) in float32 (or its integer type); the evaluator then
rounds every output to the type the program declares, so a float16 program keeps float16 values between ops.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgedino.errors import EdgeDinoError

SQRT_HALF = np.float32(np.sqrt(0.5))


def _ints(v) -> list[int]:
    return [int(i) for i in np.atleast_1d(v)]


def _axes(axes, rank: int) -> tuple[int, ...]:
    return tuple(a % rank for a in _ints(axes))


def erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: float32's own rounding); numpy has none."""
    z = np.abs(x, dtype=np.float32)
    e = np.exp(-(z * z))
    t = np.reciprocal(z * np.float32(0.3275911) + 1, out=z)
    poly = t * np.float32(1.061405429) - np.float32(1.453152027)
    for c in (1.421413741, -0.284496736, 0.254829592):
        poly *= t
        poly += np.float32(c)
    poly *= t
    poly *= e
    return np.copysign(np.subtract(1, poly, out=poly), x)


def gelu(a: dict) -> np.ndarray:
    x, mode = np.asarray(a["x"], np.float32), a.get("mode", "EXACT")
    if mode == "EXACT":
        y = erf(x * SQRT_HALF)
    elif mode == "TANH_APPROXIMATION":
        y = np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x ** 3))
    elif mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(np.float32(-1.702) * x))
    else:
        raise EdgeDinoError(f"gelu mode {mode!r} is not one of EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION")
    y += 1
    y *= x
    y *= np.float32(0.5)
    return y


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def layer_norm(a: dict) -> np.ndarray:
    x, axes = a["x"], _axes(a["axes"], a["x"].ndim)
    centred = x - x.mean(axes, keepdims=True)
    y = centred / np.sqrt((centred * centred).mean(axes, keepdims=True) + np.float32(a.get("epsilon", 1e-5)))
    return y * a.get("gamma", 1.0) + a.get("beta", 0.0)


def batch_norm(a: dict) -> np.ndarray:
    """Per-channel (axis 1) (x - mean) / sqrt(variance + epsilon) * gamma + beta: a fused scale and shift."""
    x = a["x"]
    along = (-1,) + (1,) * (x.ndim - 2)
    scale = np.float32(1) / np.sqrt(a["variance"] + np.float32(a.get("epsilon", 1e-5)))
    y = (x - a["mean"].reshape(along)) * scale.reshape(along)
    return y * np.asarray(a.get("gamma", 1.0)).reshape(along if "gamma" in a else ()) + np.asarray(
        a.get("beta", 0.0)).reshape(along if "beta" in a else ())


def matmul(a: dict) -> np.ndarray:
    x = np.swapaxes(a["x"], -1, -2) if a.get("transpose_x", False) else a["x"]
    return x @ (np.swapaxes(a["y"], -1, -2) if a.get("transpose_y", False) else a["y"])


def linear(a: dict) -> np.ndarray:
    """x W^T + b, as one 2-D matrix product (numpy would run one small product per leading index)."""
    x, w = a["x"], a["weight"]
    y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0])
    return y + a["bias"] if "bias" in a else y


def attention(a: dict) -> np.ndarray:
    """scaled_dot_product_attention: softmax(q k^T / sqrt(d) + mask) v; a bool mask keeps the True entries."""
    q, k, v = a["query"], a["key"], a["value"]
    scores = (q @ np.swapaxes(k, -1, -2)) / np.float32(np.sqrt(q.shape[-1]))
    mask = a.get("attn_mask")
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + mask
    return softmax(scores, -1) @ v


def _pads(a: dict, x: np.ndarray, kernel: tuple[int, int], strides: list[int], dilations: list[int]) -> list[int]:
    """[top, bottom, left, right] for the conv's pad_type (valid, custom, same, same_lower)."""
    pad_type = a.get("pad_type", "valid")
    if pad_type == "valid":
        return [0, 0, 0, 0]
    if pad_type == "custom":
        return _ints(a.get("pad", [0, 0, 0, 0]))
    if pad_type not in ("same", "same_lower"):
        raise EdgeDinoError(f"conv pad_type {pad_type!r} is not supported")
    pads = []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations, strict=True):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small = total // 2
        pads += [total - small, small] if pad_type == "same_lower" else [small, total - small]
    return pads


def conv(a: dict) -> np.ndarray:
    """2-D convolution (NCHW, OIHW weight) with groups, strides, dilations and padding."""
    x, w, groups = a["x"], a["weight"], int(a.get("groups", 1))
    if x.ndim != 4:
        raise EdgeDinoError(f"conv on a rank-{x.ndim} input: only 2-D convolution is supported")
    strides, dilations = _ints(a.get("strides", [1, 1])), _ints(a.get("dilations", [1, 1]))
    kh, kw = w.shape[2:]
    top, bottom, left, right = _pads(a, x, (kh, kw), strides, dilations)
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    span = ((kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1)
    if groups == x.shape[1] == w.shape[0] and w.shape[1] == 1:  # depthwise: one multiply-add per kernel tap
        (sh, sw), (dh, dw) = strides, dilations
        ho, wo = (x.shape[2] - span[0]) // sh + 1, (x.shape[3] - span[1]) // sw + 1
        out = np.zeros((x.shape[0], w.shape[0], ho, wo), np.float32)
        for i in range(kh):
            for j in range(kw):
                tap = x[:, :, i * dh:i * dh + (ho - 1) * sh + 1:sh, j * dw:j * dw + (wo - 1) * sw + 1:sw]
                out += tap * w[None, :, 0, i, j, None, None]
    else:
        win = sliding_window_view(x, span, axis=(2, 3))[:, :, ::strides[0], ::strides[1], ::dilations[0],
                                                          ::dilations[1]]
        cin, cout = x.shape[1] // groups, w.shape[0] // groups
        out = np.concatenate([np.einsum("nchwij,ocij->nohw", win[:, g * cin:(g + 1) * cin],
                                        w[g * cout:(g + 1) * cout], optimize=True) for g in range(groups)], axis=1)
    return out + a["bias"][None, :, None, None] if "bias" in a else out


def slice_by_index(a: dict) -> np.ndarray:
    x = a["x"]
    n, zeros = x.ndim, np.zeros(x.ndim, bool)
    begin, end = _ints(a["begin"]), _ints(a["end"])
    stride = _ints(a.get("stride", np.ones(n, int)))
    bmask, emask, squeeze = (np.atleast_1d(a.get(k, zeros)) for k in ("begin_mask", "end_mask", "squeeze_mask"))
    index = tuple(begin[i] if squeeze[i] else slice(None if bmask[i] else begin[i], None if emask[i] else end[i],
                                                     stride[i]) for i in range(n))
    return x[index]


def split(a: dict) -> tuple[np.ndarray, ...]:
    x, axis = a["x"], int(a["axis"])
    sizes = _ints(a["split_sizes"]) if "split_sizes" in a else [x.shape[axis] // int(a["num_splits"])] * int(
        a["num_splits"])
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def concat(a: dict) -> np.ndarray:
    if a.get("interleave", False):
        raise EdgeDinoError("concat with interleave=True is not supported")
    return np.concatenate(a["values"], axis=int(a["axis"]))


def expand_dims(a: dict) -> np.ndarray:
    rank = a["x"].ndim + len(_ints(a["axes"]))
    return np.expand_dims(a["x"], _axes(a["axes"], rank))


OPS = {
    "add": lambda a: a["x"] + a["y"],
    "sub": lambda a: a["x"] - a["y"],
    "mul": lambda a: a["x"] * a["y"],
    "real_div": lambda a: a["x"] / a["y"],
    "clip": lambda a: np.clip(a["x"], a["alpha"], a["beta"]),
    "matmul": matmul,
    "linear": linear,
    "conv": conv,
    "layer_norm": layer_norm,
    "batch_norm": batch_norm,
    "gelu": gelu,
    "softmax": lambda a: softmax(a["x"], int(a.get("axis", -1))),
    "scaled_dot_product_attention": attention,
    "reshape": lambda a: a["x"].reshape(_ints(a["shape"])),
    "transpose": lambda a: np.transpose(a["x"], _ints(a["perm"])),
    "concat": concat,
    "split": split,
    "slice_by_index": slice_by_index,
    "reduce_mean": lambda a: a["x"].mean(_axes(a["axes"], a["x"].ndim) if "axes" in a else None,
                                         keepdims=bool(a.get("keep_dims", False))),
    "expand_dims": expand_dims,
    "reverse": lambda a: np.flip(a["x"], _axes(a["axes"], a["x"].ndim) if "axes" in a else None),
    "sqrt": lambda a: np.sqrt(a["x"]),
    "squeeze": lambda a: np.squeeze(a["x"], _axes(a["axes"], a["x"].ndim) if "axes" in a else None),
}
