"""Folders written by torch.distributed.checkpoint (DCP), as official DINOv3 training runs save them (sharded).

Only the tensors asked for are read, sized from the folder's metadata before anything is allocated; every shard
file they need is checked first, so a missing shard is named instead of failing deep in DCP. The `.metadata`
file is a pickle: it is read by an unpickler that builds DCP's own metadata types and nothing else (the
counterpart of torch.load's weights_only=True, which DCP itself does not apply).
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import Tensor

from edgedino.errors import CheckpointError

METADATA = ".metadata"
_SAFE = {
    "torch.distributed.checkpoint.metadata": None,  # every name: DCP's metadata dataclasses
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.serialization": {"_get_layout"},
    "torch": {"Size"},
    "pathlib": {"Path", "PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"},
    "collections": {"OrderedDict"},
    "builtins": {"set", "frozenset", "slice"},
}


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        allowed = _SAFE.get(module, set())
        obj = super().find_class(module, name) if module in _SAFE else None
        if module in _SAFE and (allowed is None or name in allowed or isinstance(obj, torch.dtype)):
            return obj
        raise CheckpointError(f"refused: the checkpoint's {METADATA} refers to {module}.{name}, which is not part of "
                              "a torch.distributed.checkpoint metadata file (it could run code when loaded)")


def is_dcp(path: Path) -> bool:
    return path.is_dir() and (path / METADATA).is_file()


def read_metadata(folder: Path):
    """The folder's DCP Metadata, unpickled with only DCP's types allowed."""
    try:
        with open(folder / METADATA, "rb") as f:
            return _MetadataUnpickler(f).load()
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{folder / METADATA} is not a readable DCP metadata file ({type(e).__name__}: {e})") \
            from None


def tensor_names(folder: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor the checkpoint holds, flattened name -> shape (nothing is read but the metadata)."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    md = read_metadata(folder)
    return {k: tuple(v.size) for k, v in md.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}


def load_tensors(folder: Path, names: list[str]) -> dict[str, Tensor]:
    """The named tensors, read in this one process; a missing or short shard file is a CheckpointError."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

    md = read_metadata(folder)
    wanted = set(names)
    for index, info in md.storage_data.items():
        if index.fqn not in wanted:
            continue
        shard = folder / info.relative_path
        if not shard.is_file():
            raise CheckpointError(f"sharded checkpoint {folder} is incomplete: {info.relative_path} is missing "
                                  f"(it holds part of {index.fqn})")
        if shard.stat().st_size < info.offset + info.length:
            raise CheckpointError(f"sharded checkpoint {folder} is incomplete: {info.relative_path} is truncated")
    state = {n: torch.empty(md.state_dict_metadata[n].size, dtype=md.state_dict_metadata[n].properties.dtype)
             for n in names}

    class Reader(FileSystemReader):
        def read_metadata(self, *args, **kwargs):
            return md

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is ... uninitialized, assuming ... a single process"
        try:
            dcp.load(state, storage_reader=Reader(folder), planner=DefaultLoadPlanner(allow_partial_load=True),
                     no_dist=True)
        except Exception as e:
            raise CheckpointError(f"cannot read the sharded checkpoint {folder}: {str(e).strip().splitlines()[-1]}") \
                from None
    return state
