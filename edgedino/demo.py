"""The demo model shipped with edgedino: a small ViT/8 that `edgedino pretrain --preset demo-dense` trained on a
few hundred images (OpenCV's samples), so that the demo and the apps show tracking and feature maps that mean
something without a download. It is NOT DINOv3: use real DINOv3 weights (--weights) for real work."""

from __future__ import annotations

from pathlib import Path

DEMO_WEIGHTS = Path(__file__).resolve().parent / "assets" / "demo" / "demo-vit8-dense.pth"
DEMO_NAME = "demo"  # `--weights demo` names the shipped demo model
DEMO_NOTICE = ("the edgedino demo model (a ViT/8 trained on a few hundred images, NOT DINOv3): its features show "
               "what the tools do, not what DINOv3 does; pass --weights for real DINOv3 weights")


def is_demo(spec: str | Path | None) -> bool:
    return spec is not None and str(spec) == DEMO_NAME
