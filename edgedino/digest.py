"""SHA-256 of weights files, and the check of the hash prefix that DINOv3's released file names carry.

Meta names its releases `dinov3_<arch>_pretrain_<data>-<first 8 hex digits of the SHA-256>.pth` (torch.hub's
convention). A file with such a name is hashed and compared before use: a truncated download or a swapped file
is refused, by name, before any tensor is read. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from functools import lru_cache
from pathlib import Path

from edgedino.errors import CheckpointError

RELEASE_NAME = re.compile(r"^dinov3_\w+-([0-9a-f]{8,64})\.pth$")
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_INDEX = "model.safetensors.index.json"  # sharded Hugging Face weights: the index names the shard files


def regular_file(path: str | Path) -> Path:
    """`path` if it is a regular file; a device (/dev/zero), a FIFO or a socket would hang or never end."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is not a regular file")
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a regular file, computed once per (path, size, mtime) in a process."""
    p = regular_file(Path(path).resolve())
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hf_weight_files(folder: Path) -> list[Path]:
    """The weights files of a Hugging Face model folder: one file, or the shards its index names."""
    if (folder / HF_INDEX).is_file():
        try:
            shards = sorted(set(json.loads((folder / HF_INDEX).read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{folder / HF_INDEX} is not a safetensors index ({e})") from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise CheckpointError(f"{folder}: shard {missing[0]} named in {HF_INDEX} is missing")
        return [folder / s for s in shards]
    found = [folder / n for n in HF_WEIGHTS if (folder / n).is_file()]
    if not found:
        raise CheckpointError(f"{folder} has no {' or '.join(HF_WEIGHTS)}: not a Hugging Face model folder")
    return found[:1]


def weights_sha256(path: str | Path) -> str:
    """SHA-256 of a weights file; of a Hugging Face folder's weights file (or of its shards' digests, in order)."""
    p = Path(path)
    if not p.is_dir():
        return file_sha256(p)
    files = hf_weight_files(p)
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(f"{f.name} {file_sha256(f)}\n" for f in files).encode()).hexdigest()


def name_hash(name: str) -> str | None:
    """The hash prefix a DINOv3 release name carries (`…-08c60483.pth` -> "08c60483"), else None."""
    m = RELEASE_NAME.match(name)
    return m[1] if m else None


def check_name_hash(path: str | Path) -> str | None:
    """For a file named as a DINOv3 release, its SHA-256 must start with the digits in its name.

    Returns the checked prefix (None when the name carries none); a mismatch is a CheckpointError."""
    p = Path(path)
    prefix = name_hash(p.name)
    if prefix is None or not p.is_file():
        return None
    actual = file_sha256(p)
    if not actual.startswith(prefix):
        raise CheckpointError(f"{p.name}: its name says its SHA-256 starts with {prefix}, but the file's starts with "
                              f"{actual[:len(prefix)]}: the file is incomplete or not the released one "
                              "(download it again)")
    return prefix
