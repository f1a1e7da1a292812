"""Device-side code: torch-free (numpy, OpenCV and the artifact's runtime package only)."""

from edgedino.runtime.base import Runtime, RuntimeUnavailable, load
from edgedino.runtime.features import Features
from edgedino.runtime.task_head import HeadInfo

__all__ = ["Features", "HeadInfo", "Runtime", "RuntimeUnavailable", "load"]
