"""Video object tracking by label propagation over dense backbone features (DINO's method). Torch-free."""

from edgedino.track.params import TrackedObject, TrackParams, TrackResult
from edgedino.track.tracker import Tracker

__all__ = ["TrackParams", "TrackResult", "TrackedObject", "Tracker"]
