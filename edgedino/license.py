"""The notice that travels with DINOv3 weights and everything derived from them (and the one for the demo model)."""

from __future__ import annotations

from pathlib import Path

DINOV3_NOTICE = (
    "Weights released by Meta as DINOv3 are under the DINOv3 License "
    "(https://github.com/facebookresearch/dinov3/blob/main/LICENSE.md); models exported or fine-tuned "
    "from them are derivatives and stay under its terms."
)
RANDOM_NOTICE = "random weights (no --weights given): the features carry no meaning, only the shapes and speed are real"
DEMO_LICENSE = ("the edgedino demo model: trained by edgedino on OpenCV's sample images, not DINOv3 and not "
                "derived from Meta's weights; it is distributed with edgedino under edgedino's license")


def weights_notice(weights: str | Path | None) -> str:
    """The license line for a backbone's weights file: random init, the shipped demo model, or DINOv3's."""
    from edgedino.demo import DEMO_WEIGHTS

    if not weights:
        return RANDOM_NOTICE
    return DEMO_LICENSE if Path(weights).resolve() == DEMO_WEIGHTS else DINOV3_NOTICE
