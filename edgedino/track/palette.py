"""Palette PNGs read as palette indices (as DAVIS stores object ids) and written back, with zlib and numpy only:
OpenCV decodes palette PNGs to colours, which loses the ids. Torch-free."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@lru_cache(maxsize=1)
def davis_palette() -> np.ndarray:
    """(256, 3) uint8: the PASCAL VOC / DAVIS colour map (id 1 red, 2 green, 3 yellow, ...). Read-only."""
    ids = np.arange(256)
    pal = np.zeros((256, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            pal[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    pal = pal.astype(np.uint8)
    pal.flags.writeable = False
    return pal


def _chunks(data: bytes, path: Path):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise EdgeDinoError(f"{path}: corrupt PNG (chunk {kind!r} is truncated or fails its CRC)")
        yield kind, body
        pos += 12 + length


def _unfilter(raw: np.ndarray, height: int, stride: int) -> np.ndarray:
    """Undo PNG's per-row filters for one byte per pixel (or less): (height, stride) uint8."""
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            cur = line
        elif kind == 1:
            cur = np.cumsum(line, dtype=np.uint8)
        elif kind == 2:
            cur = line + prev
        elif kind in (3, 4):
            cur = _sequential(line, prev, kind)
        else:
            raise EdgeDinoError(f"corrupt PNG: unknown filter type {kind} in row {y}")
        out[y] = prev = cur
    return out


def _sequential(line: np.ndarray, prev: np.ndarray, kind: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters, which depend on the pixel just decoded: one pixel at a time."""
    cur, above, left, corner = [0] * len(line), prev.tolist(), 0, 0
    for i, (v, b) in enumerate(zip(line.tolist(), above, strict=True)):
        if kind == 3:
            pred = (left + b) // 2
        else:
            p = left + b - corner
            pa, pb, pc = abs(p - left), abs(p - b), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else (b if pb <= pc else corner)
        left = cur[i] = (v + pred) & 255
        corner = b
    return np.asarray(cur, np.uint8)


def read_indexed_png(path: str | Path) -> np.ndarray:
    """(H, W) uint8 palette indices of a palette PNG (or the values of an 8-bit-or-less grayscale PNG)."""
    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"mask not found: {path}")
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise EdgeDinoError(f"{path}: not a PNG file")
    chunks = list(_chunks(data, path))
    if not chunks or chunks[0][0] != b"IHDR":
        raise EdgeDinoError(f"{path}: corrupt PNG (no IHDR chunk)")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if colour not in (0, 3) or depth > 8:
        raise EdgeDinoError(f"{path}: masks must be palette (indexed) or 8-bit grayscale PNGs, as DAVIS stores "
                            f"them; this one has PNG colour type {colour} at {depth} bits")
    if interlace:
        raise EdgeDinoError(f"{path}: interlaced PNGs are not supported; save the mask without interlacing")
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT")), np.uint8)
    except zlib.error as e:
        raise EdgeDinoError(f"{path}: corrupt PNG image data ({e})") from None
    stride = (width * depth + 7) // 8
    if raw.size != height * (stride + 1):
        raise EdgeDinoError(f"{path}: corrupt PNG (image data is {raw.size} bytes, expected {height * (stride + 1)})")
    rows = _unfilter(raw, height, stride)
    if depth == 8:
        return rows
    bits = np.unpackbits(rows, axis=1).reshape(height, -1, depth)
    weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
    return (bits * weights).sum(axis=-1).astype(np.uint8)[:, :width]


def write_indexed_png(path: str | Path, index: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write (H, W) uint8 ids as an 8-bit palette PNG (DAVIS colours by default), atomically."""
    index = np.asarray(index)
    if index.ndim != 2 or index.dtype != np.uint8:
        raise EdgeDinoError(f"a mask to write must be (H, W) uint8, got {index.dtype} {index.shape}")
    palette = davis_palette() if palette is None else np.asarray(palette, np.uint8)
    height, width = index.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), index], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
           + chunk(b"PLTE", palette.tobytes()) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
