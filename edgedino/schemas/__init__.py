"""The JSON edgedino writes, in one table: each output's name and schema version, with its JSON Schema file
(Draft 2020-12) shipped in this folder, so every writer stamps the version that docs/outputs.md and the tests check.
Torch-free: the apps use it on a device."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

# name -> schema_version; raise a version when a key is removed, renamed or changes meaning or units
VERSIONS: dict[str, int] = {
    "export": 1,  # `edgedino export --json`
    "verify": 1,  # `edgedino verify --json`
    "compare": 1,  # `edgedino compare --json`
    "eval": 1,  # `edgedino eval knn|linear --json`
    "benchmark": 1,  # `edgedino benchmark [latency] --json`
    "benchmark-tracking": 1,  # `edgedino benchmark tracking --json`
    "artifact-metadata": 1,  # the JSON string every exported artifact carries under the key "edgedino"
    "track-jsonl": 1,  # one line per frame of `edgedino-track --json`
    "classify-jsonl": 1,  # one line per frame of `edgedino-classify --json`
    "segment-jsonl": 1,  # one line per frame of `edgedino-segment --json`
    "train-metrics": 1,  # one line per step of the metrics.jsonl of `edgedino pretrain` and `edgedino distill`
}


def schema_file(name: str) -> str:
    """The file name of an output's JSON Schema inside edgedino/schemas."""
    if name not in VERSIONS:
        raise KeyError(f"no output named {name!r} (outputs: {', '.join(VERSIONS)})")
    return f"{name}.schema.json"


def load_schema(name: str) -> dict:
    """An output's JSON Schema, read from the installed package."""
    return json.loads(resources.files(__name__).joinpath(schema_file(name)).read_text(encoding="utf-8"))


def stamp(name: str, record: dict) -> dict:
    """`record` with the output's schema_version as its first key."""
    return {"schema_version": VERSIONS[name], **{k: v for k, v in record.items() if k != "schema_version"}}


def write_json(path: str | Path, name: str, record: dict) -> None:
    """Write the stamped record as indented JSON, atomically (the file appears whole or not at all)."""
    from edgedino.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(stamp(name, record), indent=2) + "\n")
