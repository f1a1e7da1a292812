"""What the tracker is told (TrackParams) and what it answers per frame (TrackedObject, TrackResult). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrackParams:
    """Label propagation settings. context, radius and topk are the defaults of DINO's video segmentation
    evaluation (Caron et al. 2021, eval_video_segmentation.py: n_last_frames=7, size_mask_neighborhood=12,
    topk=5), the protocol DINOv3 reuses; temperature 0.2 is the softmax temperature of the DINOv3 tracking
    protocol. protocol names how they are applied (edgedino.track.protocol): "edgedino", ours and faster, or
    "dinov3", DINOv3's notebook op for op. lost_confidence and lost_area are edgedino's own choices for the demo's
    "lost" state."""

    context: int = 7  # last N frames kept besides the first frame
    radius: int = 12  # neighbourhood radius in patches (a square for "edgedino", a circle for "dinov3")
    topk: int = 5  # keys each patch takes its label from
    temperature: float = 0.2  # softmax temperature over the top-k cosine similarities
    lost_confidence: float = 0.6  # below this mean confidence an object is "lost"
    lost_area: float = 0.1  # area below this fraction of the first-frame area -> "lost"
    protocol: str = "edgedino"  # a key of edgedino.track.protocol.PROTOCOLS

    def __post_init__(self) -> None:
        from edgedino.errors import EdgeDinoError
        from edgedino.track.protocol import PROTOCOLS

        if self.protocol not in PROTOCOLS:
            raise EdgeDinoError(f"unknown tracking protocol {self.protocol!r} (known: {', '.join(PROTOCOLS)})")
        if self.context < 0 or self.radius < 1 or self.topk < 1 or self.temperature <= 0:
            raise EdgeDinoError(f"bad tracking parameters: {self} (need context >= 0, radius >= 1, topk >= 1, "
                                "temperature > 0)")


@dataclass
class TrackedObject:
    """One object in one frame."""

    id: int  # object id as in the init mask (1..255)
    box: tuple[int, int, int, int] | None  # x, y, w, h in frame pixels; None when the mask is empty
    area: int  # mask pixels at frame resolution
    confidence: float  # mean max-probability inside the object's mask, 0..1
    lost: bool


@dataclass
class TrackResult:
    """One frame's answer: the id mask at frame resolution, its objects, and where this frame's time went."""

    labels: np.ndarray  # (H, W) uint8 at frame resolution, 0 = background, else object id
    objects: list[TrackedObject]
    ms: dict[str, float] = field(default_factory=dict)  # "preprocess", "backbone", "propagate"
