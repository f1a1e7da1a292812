"""Regenerate official_keys.json from a checkout of facebookresearch/dinov3 (not vendored; run by hand).

    python tests/data/official_keys.py /path/to/dinov3 > tests/data/official_keys.json

Each preset's model is built by the official hub builder with pretrained=False on the meta device (no memory, no
download); its state_dict() names and shapes, in order, are what the official code writes and what its
load_state_dict(strict=True) expects. The tests compare edgedino's loader and writer with these lists.
"""

from __future__ import annotations

import json
import subprocess
import sys

PRESETS = ("vits16", "vits16plus", "vitb16", "vitl16", "vitl16plus", "vith16plus",
           "convnext_tiny", "convnext_small", "convnext_base", "convnext_large")


def main(repo: str) -> None:
    import torch

    sys.path.insert(0, repo)
    from dinov3.hub import backbones

    builds = {name: (getattr(backbones, f"dinov3_{name}"), {}) for name in PRESETS}
    builds["vitl16_sat493m"] = (backbones.dinov3_vitl16, {"weights": backbones.Weights.SAT493M})
    presets = {}
    for name, (build, kwargs) in builds.items():
        with torch.device("meta"):
            net = build(pretrained=False, **kwargs)
        presets[name] = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    doc = {"source": f"facebookresearch/dinov3 at commit {commit}: dinov3.hub.backbones.dinov3_<preset>("
                     "pretrained=False) built on the meta device, state_dict() names and shapes in order "
                     "(vitl16_sat493m: dinov3_vitl16(pretrained=False, weights=Weights.SAT493M)); made by "
                     "tests/data/official_keys.py",
           "presets": presets}
    text = json.dumps(doc, separators=(",", ":")).replace("],[", "],\n[").replace('":[[', '":[\n[')
    print(text)


if __name__ == "__main__":
    main(sys.argv[1])
