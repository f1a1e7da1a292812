"""Weights from wherever users have them: a local file or folder, a Hugging Face Hub id, or a download link."""

from __future__ import annotations

from pathlib import Path

from edgedino.errors import CheckpointError
from edgedino.fetch import hub, url


def resolve(spec: str | Path) -> Path:
    """A local path for `spec`: the path itself, the shipped demo model for "demo", the Hub snapshot folder of
    `owner/name[@rev]`, or the cached download of an http(s) link. A local file or folder wins over the others."""
    from edgedino.demo import DEMO_WEIGHTS, is_demo
    from edgedino.digest import regular_file

    text = str(spec)
    if not text.strip():
        raise CheckpointError("the weights are an empty name: give a file, a folder, a Hub id or an http(s) link")
    if is_demo(text) and not Path(text).exists():
        return DEMO_WEIGHTS
    if url.is_url(text):
        return url.download(text)
    url.check_scheme(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        return regular_file(path)  # a FIFO or a device would hang the reader
    if path.is_symlink():
        raise CheckpointError(f"{text} is a symbolic link to nothing (broken, or a loop)")
    if hub.is_hub_id(text):
        return Path(hub.snapshot(text))
    raise CheckpointError(f"weights not found: {text}{hub.not_an_id(text)}")


__all__ = ["resolve"]
