"""Read a saved .mlpackage without Apple's runtime: its ML program spec and the constants in its weight blob.

The blob file (weights/weight.bin, MILBlob storage version 2) is a 64-byte header (blob count, version), then per
blob a 64-byte metadata record (0xDEADBEEF sentinel, data type, size in bytes, data offset) followed by the data.
A spec value names the offset of its metadata record; its MIL type gives the element type and shape.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.coreml import read_package_spec

SENTINEL = 0xDEADBEEF
BLOB_VERSION = 2
MODEL_PATH = "@model_path/"
# MIL element types with a numpy equivalent; sub-byte unsigned/signed ints are unpacked to uint8/int8.
DTYPES = {"FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64, "BOOL": np.bool_,
          "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
          "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64}
SUB_BYTE = {f"UINT{b}": (b, False) for b in range(1, 7)} | {"INT4": (4, True)}
IMMEDIATE = {"floats": np.float32, "doubles": np.float64, "ints": np.int32, "longInts": np.int64, "bools": np.bool_}


def read_spec(path: Path):
    """The Model protobuf of the ML program package at `path`."""
    spec = read_package_spec(path)
    if spec.WhichOneof("Type") != "mlProgram":
        raise EdgeDinoError(f"{path}: a Core ML {spec.WhichOneof('Type')}, not an ML program")
    return spec


def type_name(tensor_type) -> str:
    """A MIL tensor's element type by name: "FLOAT16", "INT8", ..."""
    from coremltools.proto.MIL_pb2 import DataType

    return DataType.Name(tensor_type.dataType)


def shape_of(tensor_type) -> tuple[int, ...] | None:
    """The tensor's shape, or None where a dimension is not a constant."""
    dims = tensor_type.dimensions
    if any(d.WhichOneof("dimension") != "constant" for d in dims):
        return None
    return tuple(d.constant.size for d in dims)


class Blobs:
    """The weight blob files of one package, each read once and decoded per value on demand."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, np.ndarray] = {}

    def _file(self, name: str) -> np.ndarray:
        if name not in self.files:
            path = self.root / name.removeprefix(MODEL_PATH)
            if not name.startswith(MODEL_PATH) or not path.is_file():
                raise EdgeDinoError(f"Core ML package: weight file {name!r} is missing")
            data = np.fromfile(path, np.uint8)
            count, version = data[:8].view(np.uint32) if data.size >= 64 else (0, 0)
            if version != BLOB_VERSION:
                raise EdgeDinoError(f"{path}: not a version-{BLOB_VERSION} weight blob (header {count}, {version})")
            self.files[name] = data
        return self.files[name]

    def read(self, name: str, offset: int, mil_type: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor of `mil_type` and `shape` whose metadata record sits at `offset` of blob file `name`."""
        data = self._file(name)
        if offset < 64 or offset + 64 > data.size:
            raise EdgeDinoError(f"{name}: blob offset {offset} is outside the file ({data.size} bytes)")
        sentinel, _, size, start = (int(v) for v in (*data[offset:offset + 8].view(np.uint32),
                                                     *data[offset + 8:offset + 24].view(np.uint64)))
        count = math.prod(shape)
        bits, _ = SUB_BYTE.get(mil_type, (np.dtype(DTYPES.get(mil_type, np.uint8)).itemsize * 8, False))
        if sentinel != SENTINEL or size != math.ceil(count * bits / 8) or start + size > data.size:
            raise EdgeDinoError(f"{name}: blob at offset {offset} does not hold {mil_type}{list(shape)} "
                                f"(sentinel {sentinel:#x}, {size} bytes at {start})")
        return decode(data[start:start + size].tobytes(), mil_type, shape)


def decode(raw: bytes, mil_type: str, shape: tuple[int, ...]) -> np.ndarray:
    """Little-endian bytes as a tensor; sub-byte types are packed low bits first."""
    if mil_type in SUB_BYTE:
        bits, signed = SUB_BYTE[mil_type]
        flat = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:math.prod(shape) * bits]
        values = flat.reshape(-1, bits).astype(np.int16) @ (1 << np.arange(bits, dtype=np.int16))
        if signed:
            values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
        return values.astype(np.int8 if signed else np.uint8).reshape(shape)
    if mil_type not in DTYPES:
        raise EdgeDinoError(f"Core ML constant of MIL type {mil_type} cannot be read")
    return np.frombuffer(raw, DTYPES[mil_type]).reshape(shape).copy()


def constant(value, blobs: Blobs):
    """A spec Value (inline or in a blob) as a numpy array, a str or a list of str."""
    tensor_type = value.type.tensorType
    mil_type, shape = type_name(tensor_type), shape_of(tensor_type)
    if value.WhichOneof("value") == "blobFileValue":
        return blobs.read(value.blobFileValue.fileName, value.blobFileValue.offset, mil_type, shape)
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if kind == "strings":
        strings = list(tensor.strings.values)
        return strings[0] if shape == () else strings
    if kind == "bytes":
        return decode(tensor.bytes.values, mil_type, shape)
    if kind not in IMMEDIATE:
        raise EdgeDinoError(f"Core ML constant of kind {kind!r} cannot be read")
    values = np.asarray(getattr(tensor, kind).values, IMMEDIATE[kind])
    return values.astype(DTYPES.get(mil_type, values.dtype)).reshape(shape)
