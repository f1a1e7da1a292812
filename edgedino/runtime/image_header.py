"""An image's size from its file header, read before decoding, so that a small file claiming a huge image (a
20000x20000 PNG of a few kilobytes decodes to over a gigabyte) is refused instead of allocated. Torch-free.

PNG, JPEG, BMP, GIF and WebP headers are read; other formats return None and are left to OpenCV's own limit.
"""

from __future__ import annotations

import struct
from pathlib import Path

HEAD = 1 << 16  # bytes read: JPEG may put EXIF thumbnails before its frame header


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) that the file's header declares, or None when the format is not one read here."""
    try:
        with open(path, "rb") as f:
            data = f.read(HEAD)
    except OSError:
        return None
    for reader in (_png, _jpeg, _gif, _bmp, _webp):
        try:
            size = reader(data)
        except (struct.error, IndexError):
            size = None
        if size is not None:
            return size
    return None


def _png(d: bytes):
    if d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR":
        w, h = struct.unpack(">II", d[16:24])
        return h, w
    return None


def _jpeg(d: bytes):
    if d[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(d):
        if d[i] != 0xFF:
            return None
        marker = d[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", d[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", d[i + 5:i + 9])
            return h, w
        i += 2 + length
    return None


def _gif(d: bytes):
    if d[:6] in (b"GIF87a", b"GIF89a"):
        w, h = struct.unpack("<HH", d[6:10])
        return h, w
    return None


def _bmp(d: bytes):
    if d[:2] == b"BM":
        w, h = struct.unpack("<ii", d[18:26])
        return abs(h), abs(w)
    return None


def _webp(d: bytes):
    if d[:4] != b"RIFF" or d[8:12] != b"WEBP":
        return None
    kind = d[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", d[26:30])
        return h & 0x3FFF, w & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(d[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(d[27:30], "little") + 1, int.from_bytes(d[24:27], "little") + 1
    return None
