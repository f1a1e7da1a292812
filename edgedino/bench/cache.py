"""Artifacts cached by content, so a second benchmark run measures without re-exporting.

The key covers everything that changes the file: model, weights hash, target, precision, size, batch,
calibration source, the versions of edgedino and every converter, and the source of the code that shapes the
graph (edgedino.models, edgedino.export), so a changed deploy form or quantizer never reuses an old artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from edgedino.atomic import atomic_path
from edgedino.bench.machine import versions


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEDINO_CACHE", Path.home() / ".cache" / "edgedino"))


def seeded_weights(model: str) -> Path:
    """Random weights made once with a fixed seed, so a cached artifact and this run's PyTorch agree."""
    from edgedino import create_model, save_backbone

    path = cache_dir() / "weights" / f"{model}-random-seed0.pt"
    if not path.exists():
        save_backbone(create_model(model).reset_parameters(seed=0), path, "edgedino")
    return path


def graph_source_digest() -> str:
    """SHA-256 of the Python source of edgedino.models and edgedino.export: what makes the exported graph."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for sub in ("models", "export") for p in (package / sub).rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def artifact(model: str, weights: Path, target: str, precision: str, imgsz: tuple[int, int], batch: int,
             calib: str | None, calib_size: int, log) -> tuple[object, bool]:
    """(ArtifactResult, cache hit) for one export; failed exports are not cached."""
    from edgedino.digest import weights_sha256
    from edgedino.export import ArtifactResult, export

    content = {"model": model, "weights": weights_sha256(str(weights)), "target": target, "precision": precision,
               "imgsz": list(imgsz), "batch": batch, "calib": str(calib), "calib_size": calib_size,
               "int8": "smoothquant, --int8-policy auto, held-out verification", "versions": versions(),
               "graph_source": graph_source_digest()}
    key = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "artifacts" / f"{model}_{target}_{precision}_{imgsz[0]}x{imgsz[1]}_b{batch}_{key}"
    record = folder / "result.json"
    if record.exists():
        return ArtifactResult(**json.loads(record.read_text())), True
    result = export(targets=[target], model=model, weights=str(weights), precisions=[precision], imgsz=imgsz,
                    calib=calib, calib_size=calib_size, out=folder, batch=batch, log=log).artifacts[0]
    if result.status != "export-failed":
        with atomic_path(record) as tmp:
            tmp.write_text(json.dumps(asdict(result), indent=2))
    return result, False
