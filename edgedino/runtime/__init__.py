"""Device-side code: torch-free (numpy, OpenCV and the artifact's runtime package only)."""

from edgedino.runtime.base import Runtime, RuntimeUnavailable, load

__all__ = ["Runtime", "RuntimeUnavailable", "load"]
