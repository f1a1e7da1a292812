"""Embeddings on disk: the arrays `edgedino embed` makes (names, cls, patch_tokens or patch_mean) as one .npz, or as
a Parquet table (one row per image; each array a fixed-size list column, its per-row shape in the schema metadata)
when pyarrow is installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError

SHAPES_KEY = b"edgedino.shapes"  # schema metadata: {column: per-row shape} to restore the arrays


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".parquet"


def require_pyarrow(path: str | Path):
    """pyarrow, or a one-line error naming the missing package (checked before any work is done)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise EdgeDinoError(f"{path}: writing Parquet needs the pyarrow package, which is not installed (pip install "
                            "pyarrow), or save as .npz") from None
    return pyarrow


def write(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """`arrays` (names first, then float arrays with one row per image) written atomically as .npz or Parquet."""
    with atomic_path(path) as tmp:
        if not is_parquet(path):
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            return
        pa = require_pyarrow(path)
        columns = {"names": pa.array([str(n) for n in arrays["names"]])}
        for key, value in arrays.items():
            if key != "names":
                flat = np.ascontiguousarray(value, np.float32).reshape(len(value), -1)
                columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
        shapes = {k: list(v.shape[1:]) for k, v in arrays.items() if k != "names"}
        table = pa.table(columns).replace_schema_metadata({SHAPES_KEY: json.dumps(shapes).encode()})
        pa.parquet.write_table(table, tmp)


def read(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz or Parquet embeddings file, as `write` was given them."""
    if not is_parquet(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    pa = require_pyarrow(path)
    table = pa.parquet.read_table(path)
    shapes = json.loads(table.schema.metadata[SHAPES_KEY])
    out = {"names": np.array(table.column("names").to_pylist())}
    for key, shape in shapes.items():
        values = table.column(key).combine_chunks().flatten().to_numpy()
        out[key] = values.reshape(table.num_rows, *shape)
    return out
