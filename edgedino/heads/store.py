"""The head file: a head's weights with the backbone, input size, task and classes it was trained with.

A head is only meaningful on the exact backbone it was trained on, so the file records the preset, the
weights file and its SHA-256, and a digest of the backbone's state; `backbone_for` rebuilds that backbone
(a random one from its seed) and refuses any other.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError
from edgedino.heads.cache import backbone_digest
from edgedino.heads.head import Head, HeadConfig
from edgedino.models import Backbone
from edgedino.version import __version__

FORMAT = "edgedino-head"


@dataclass
class BackboneRecord:
    """Which backbone a head was trained on, and at what input size."""

    model: str
    weights: str | None  # absolute path of the weights file at training; None: random init from `seed`
    weights_sha256: str | None
    seed: int | None
    digest: str  # backbone_digest of the state the head saw
    imgsz: tuple[int, int]

    @classmethod
    def of(cls, backbone: Backbone, imgsz: tuple[int, int], seed: int | None) -> BackboneRecord:
        from edgedino.digest import weights_sha256

        path = getattr(backbone.source, "path", None)
        weights = str(Path(path).resolve()) if path else None
        return cls(backbone.cfg.name, weights, weights_sha256(weights) if weights else None,
                   None if weights else seed, backbone_digest(backbone), tuple(imgsz))

    def describe(self) -> str:
        if self.weights is None:
            return f"{self.model} with random weights (seed {self.seed})"
        return f"{self.model} weights {Path(self.weights).name} (sha256 {self.weights_sha256[:12]})"


@dataclass
class HeadFile:
    head: Head
    backbone: BackboneRecord
    metrics: dict


def save_head(path: str | Path, head: Head, record: BackboneRecord, metrics: dict) -> Path:
    """Write the head file atomically."""
    cfg = head.cfg
    payload = {"format": FORMAT, "edgedino": __version__, "task": cfg.task, "kind": cfg.kind, "dim": cfg.dim,
               "hidden": cfg.hidden, "classes": list(cfg.classes),
               "backbone": {**asdict(record), "imgsz": list(record.imgsz)}, "metrics": metrics,
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _payload(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise EdgeDinoError(f"cannot read {path} as a head file ({type(e).__name__})") from None


def _is_head(payload) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def read_head_file(path: str | Path) -> HeadFile | None:
    """The head file at `path`, or None when it is anything else (a backbone checkpoint: its loader says more)."""
    try:
        payload = _payload(Path(path))
    except EdgeDinoError:
        return None
    return _from_payload(payload, Path(path)) if _is_head(payload) else None


def load_head(path: str | Path) -> HeadFile:
    """A head file written by `edgedino head train`, or an error saying what the file is not."""
    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"head file not found: {path}")
    payload = _payload(path)
    if not _is_head(payload):
        raise EdgeDinoError(f"{path} is not an edgedino head file (make one with: edgedino head train)")
    return _from_payload(payload, path)


_RECORD_TYPES = {"model": str, "weights": (str, type(None)), "weights_sha256": (str, type(None)),
                 "seed": (int, type(None)), "digest": str}


def _from_payload(payload: dict, path: Path) -> HeadFile:
    """The head and its record; anything missing, of the wrong type or not fitting the weights is one error naming
    the file. The head is built on the meta device first, so a size in a damaged file allocates nothing."""
    try:
        sizes = [payload["dim"], payload["hidden"]]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
            raise ValueError(f"dim and hidden must be whole numbers >= 1, got {sizes}")
        if not isinstance(payload["classes"], list) or not all(isinstance(c, str) for c in payload["classes"]):
            raise ValueError("classes must be a list of names")
        cfg = HeadConfig(payload["task"], payload["kind"], *sizes[:1], tuple(payload["classes"]), sizes[1])
        with torch.device("meta"):
            head = Head(cfg)
        head.load_state_dict(payload["state_dict"], assign=True)
        rec = {**payload["backbone"], "imgsz": tuple(payload["backbone"]["imgsz"])}
        bad = [k for k, t in _RECORD_TYPES.items() if not isinstance(rec.get(k), t)]
        if bad or len(rec["imgsz"]) != 2 or not all(isinstance(v, int) for v in rec["imgsz"]):
            raise ValueError(f"its backbone record has wrong or missing {', '.join(bad) or 'imgsz'}")
        record = BackboneRecord(**rec)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise EdgeDinoError(f"{path} is a damaged head file ({type(e).__name__}: {' '.join(str(e).split())[:240]})"
                            ) from None
    return HeadFile(head.eval(), record, payload.get("metrics", {}))


def backbone_for(hf: HeadFile, weights: str | None = None, model: str | None = None) -> Backbone:
    """The backbone the head was trained on: `weights` if given, else the recorded file or seed; checked exactly."""
    from edgedino.checkpoints import RandomWeightsWarning, load_backbone

    rec = hf.backbone
    if model is not None and model != rec.model:
        raise EdgeDinoError(f"the head was trained on {rec.model}, not {model}")
    if weights is None and rec.weights is not None:
        if not Path(rec.weights).is_file():
            raise EdgeDinoError(f"the head was trained on {rec.describe()}; {rec.weights} is not here: "
                                f"pass --weights with that file")
        weights = rec.weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        # a file's own config ("custom" ones too); random weights from the recorded seed
        backbone = load_backbone(weights, None if weights else rec.model, seed=rec.seed or 0)
    if backbone_digest(backbone) != rec.digest:
        given = f"weights {weights}" if weights else "a random backbone"
        raise EdgeDinoError(f"the head was trained on {rec.describe()}, but {given} differs from it: "
                            f"a head only works on the backbone it was trained on")
    return backbone
