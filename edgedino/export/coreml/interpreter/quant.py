"""Compressed weights (constexpr_* decompression ops) and int8 activations (quantize/dequantize, cast) in numpy."""

from __future__ import annotations

import numpy as np

from edgedino.errors import EdgeDinoError

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _along(v, axis: int | None, rank: int) -> np.ndarray:
    """A scale or zero point as given (scalar) or laid along `axis` of a rank-`rank` tensor."""
    v = np.asarray(v, np.float32)
    if v.ndim == 0 or v.ndim == rank:
        return v
    if axis is None:
        raise EdgeDinoError(f"a per-channel scale of shape {v.shape} needs an axis")
    shape = [1] * rank
    shape[int(axis) % rank] = -1
    return v.reshape(shape)


def _blockwise(v, shape: tuple[int, ...]) -> np.ndarray:
    """A per-block tensor (same rank, each dimension dividing the data's) repeated to the data's shape."""
    v = np.asarray(v, np.float32)
    if v.ndim != len(shape) or any(s % d for s, d in zip(shape, v.shape, strict=True)):
        raise EdgeDinoError(f"block scale of shape {v.shape} does not tile data of shape {shape}")
    for axis, (s, d) in enumerate(zip(shape, v.shape, strict=True)):
        v = np.repeat(v, s // d, axis=axis)
    return v


def affine_dequantize(a: dict) -> np.ndarray:
    """iOS16 constexpr_affine_dequantize: (quantized_data - zero_point) * scale along `axis`."""
    q = a["quantized_data"]
    axis = a.get("axis")
    return (q.astype(np.float32) - _along(a["zero_point"], axis, q.ndim)) * _along(a["scale"], axis, q.ndim)


def blockwise_shift_scale(a: dict) -> np.ndarray:
    """iOS18 constexpr_blockwise_shift_scale: (data - offset) * scale, each block of the data sharing one scale."""
    data = a["data"].astype(np.float32)
    offset = _blockwise(a["offset"], data.shape) if "offset" in a else 0.0
    return (data - offset) * _blockwise(a["scale"], data.shape)


def lut_to_dense(a: dict) -> np.ndarray:
    """constexpr_lut_to_dense: iOS16 (one LUT, indices packed in uint8, a `shape`) or iOS18 (a LUT per block)."""
    lut, indices = np.asarray(a["lut"], np.float32), a["indices"]
    if "shape" in a:  # iOS16: indices are n-bit numbers packed low bits first into bytes
        shape = [int(s) for s in a["shape"]]
        bits = int(np.log2(lut.shape[-1]))
        if lut.ndim != 1 or 1 << bits != lut.size:
            raise EdgeDinoError(f"iOS16 look-up table of shape {lut.shape}: expected one table of 2^n entries")
        flat = np.unpackbits(indices.astype(np.uint8), bitorder="little")[:int(np.prod(shape)) * bits]
        return lut[flat.reshape(-1, bits).astype(np.int64) @ (1 << np.arange(bits))].reshape(shape)
    if lut.ndim != indices.ndim + 2 or lut.shape[-1] != 1:
        raise EdgeDinoError(f"look-up table of shape {lut.shape} for indices {indices.shape}: only scalar "
                            "(vector size 1) tables are supported")
    tables = lut[..., 0].reshape(-1, lut.shape[-2])  # (blocks, entries)
    block = [s // d for s, d in zip(indices.shape, lut.shape[:-2], strict=True)]
    grid = np.indices(indices.shape, sparse=True)
    which = np.ravel_multi_index(tuple(g // b for g, b in zip(grid, block, strict=True)), lut.shape[:-2])
    return tables[which, indices.astype(np.int64)]


def quantize(a: dict) -> np.ndarray:
    """iOS17 quantize: clip(round(x / scale) + zero_point) into int8 or uint8."""
    x, dtype = a["input"], a["output_dtype"]
    if dtype not in INT_RANGES:
        raise EdgeDinoError(f"quantize to {dtype!r} is not supported (int8, uint8)")
    axis = a.get("axis")
    zero = _along(a.get("zero_point", 0), axis, x.ndim)
    return np.clip(np.rint(x / _along(a["scale"], axis, x.ndim)) + zero, *INT_RANGES[dtype])


def dequantize(a: dict) -> np.ndarray:
    """iOS17 dequantize: (x - zero_point) * scale."""
    x, axis = a["input"], a.get("axis")
    return (x.astype(np.float32) - _along(a.get("zero_point", 0), axis, x.ndim)) * _along(a["scale"], axis, x.ndim)


CONSTEXPR = {
    "constexpr_affine_dequantize": affine_dequantize,
    "constexpr_blockwise_shift_scale": blockwise_shift_scale,
    "constexpr_lut_to_dense": lut_to_dense,
}
QUANT = {
    "quantize": quantize,
    "dequantize": dequantize,
    "cast": lambda a: a["x"],  # the evaluator converts every output to its declared type
}
