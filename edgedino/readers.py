"""Reading weights files that may come from anyone: pickles with weights_only=True, safetensors.

Every failure is a CheckpointError naming the file; nothing in a file can run code while it is read.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import Tensor

from edgedino.errors import CheckpointError


def torch_load(path: Path):
    """torch.load with weights_only=True; any failure is a CheckpointError naming the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    if not head.startswith((b"PK", b"\x80")):  # torch.save writes a zip archive (a pickle before PyTorch 1.6)
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} was refused: it holds pickled objects other than tensors, which could run code when "
            f"loaded (weights_only=True). First line of the refusal: {str(e).splitlines()[0]}"
        ) from None
    except Exception as e:  # a non-checkpoint file fails deep inside the unpickler, with any error type
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({type(e).__name__}: {e})") from None


def read_safetensors(file: Path) -> dict[str, Tensor]:
    """The tensors of a .safetensors file (a format with no code in it), or a CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(file)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file} is not a readable safetensors file: {e}") from None
