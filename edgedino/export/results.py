"""What an export reports: each artifact's status, parity and layers kept in float, and the whole run's settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CALIB_DEFAULT = "the photos shipped with edgedino (edgedino/assets)"
VERIFY_DEFAULT = "held-out photos shipped with edgedino (edgedino/assets/holdout)"


@dataclass
class ArtifactResult:
    target: str
    precision: str
    path: str | None
    status: str  # "ok", "verify-failed", "export-failed", "unverified" (no runtime here: static checks only)
    size_mb: float = 0.0
    export_s: float = 0.0
    threshold: float = 0.0
    parity: list[dict] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    message: str = ""
    float_layers: list[str] = field(default_factory=list)  # int8 / palettize4 layers kept in float
    tries: list[dict] = field(default_factory=list)  # int8 policy auto: each try's float layers and parity

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverified")


@dataclass
class ExportResult:
    model: str
    weights: str | None
    imgsz: tuple[int, int]
    input_format: str
    verify_images: int
    artifacts: list[ArtifactResult]
    verify_set: str = VERIFY_DEFAULT
    calib_set: str = CALIB_DEFAULT
    calib_images: int = 0
    int8_policy: str = "auto"
    sensitivity: dict[str, list[dict]] = field(default_factory=dict)  # precision -> layers, most sensitive first

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}
