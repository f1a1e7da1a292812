"""Where each preset's official DINOv3 weights come from: Meta's file names and the Hugging Face Hub repos.

Meta sends download links by email after its request form; the Hub repos are gated behind the same license.
File names follow the official hub builders (dinov3/hub/backbones.py): `dinov3_<arch>_pretrain_<data>-<hash>.pth`,
where <hash> is the start of the file's SHA-256 (checked on load, edgedino.digest).
"""

from __future__ import annotations

from dataclasses import dataclass

REQUEST_PAGE = "https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/"


@dataclass(frozen=True)
class Release:
    model: str  # the edgedino preset
    data: str  # the pretraining dataset
    file: str  # the file name in Meta's download links
    hub: str | None  # the gated Hugging Face Hub repo holding the same weights (transformers layout)


RELEASES = [
    Release("vits16", "LVD-1689M", "dinov3_vits16_pretrain_lvd1689m-08c60483.pth",
            "facebook/dinov3-vits16-pretrain-lvd1689m"),
    Release("vits16plus", "LVD-1689M", "dinov3_vits16plus_pretrain_lvd1689m-4057cbaa.pth",
            "facebook/dinov3-vits16plus-pretrain-lvd1689m"),
    Release("vitb16", "LVD-1689M", "dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth",
            "facebook/dinov3-vitb16-pretrain-lvd1689m"),
    Release("vitl16", "LVD-1689M", "dinov3_vitl16_pretrain_lvd1689m-8aa4cbdd.pth",
            "facebook/dinov3-vitl16-pretrain-lvd1689m"),
    Release("vitl16", "SAT-493M", "dinov3_vitl16_pretrain_sat493m-eadcf0ff.pth",
            "facebook/dinov3-vitl16-pretrain-sat493m"),
    Release("vitl16plus", "LVD-1689M", "dinov3_vitl16plus_pretrain_lvd1689m-46503df0.pth", None),
    Release("vith16plus", "LVD-1689M", "dinov3_vith16plus_pretrain_lvd1689m-7c1da9a5.pth",
            "facebook/dinov3-vith16plus-pretrain-lvd1689m"),
    Release("convnext_tiny", "LVD-1689M", "dinov3_convnext_tiny_pretrain_lvd1689m-21b726bb.pth",
            "facebook/dinov3-convnext-tiny-pretrain-lvd1689m"),
    Release("convnext_small", "LVD-1689M", "dinov3_convnext_small_pretrain_lvd1689m-296db49d.pth",
            "facebook/dinov3-convnext-small-pretrain-lvd1689m"),
    Release("convnext_base", "LVD-1689M", "dinov3_convnext_base_pretrain_lvd1689m-801f2ba9.pth",
            "facebook/dinov3-convnext-base-pretrain-lvd1689m"),
    Release("convnext_large", "LVD-1689M", "dinov3_convnext_large_pretrain_lvd1689m-61fa432d.pth",
            "facebook/dinov3-convnext-large-pretrain-lvd1689m"),
]


def releases_of(model: str) -> list[Release]:
    return [r for r in RELEASES if r.model == model]
