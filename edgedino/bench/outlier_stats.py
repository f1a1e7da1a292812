"""The statistic of activation outliers at each site of a backbone: max |x| / median |x| of the residual stream by
depth, of each kind of layer input, and of the output; the register tokens' norm; and sanity checks of the
features. It shows what each stress-weights severity (edgedino.bench.stress_weights) reaches, and what a real
checkpoint has."""

from __future__ import annotations

import torch
from torch import Tensor

from edgedino.bench.stress_weights import capture, rows
from edgedino.export.observe import observe, quantizable_layers
from edgedino.models import Backbone


def _kind(name: str) -> str:
    """A layer's kind, for grouping: its attribute name, or 'downsample' / 'stem' for ConvNeXt's and the patch
    embedding's convolutions."""
    if name.startswith("downsample_layers"):
        return "stem" if name.startswith("downsample_layers.0") else "downsample"
    return "stem" if name.startswith("patch_embed") else name.rsplit(".", 1)[-1]


@torch.no_grad()
def statistics(model: Backbone, images: Tensor) -> dict[str, float]:
    """max |x| / median |x| at each site (residual stream by depth, each kind of layer input, the output), the
    register tokens' norm over the patch tokens', and two sanity checks of the fp32 features."""
    model = model.eval()
    ratio = lambda x: float(x.abs().max() / x.abs().median().clamp_min(1e-12))  # noqa: E731
    stages = list(model.blocks) if hasattr(model, "blocks") else list(model.stages)
    picks = sorted({0, len(stages) // 2, len(stages) - 1})
    label = "block" if hasattr(model, "blocks") else "stage"
    skip = 1 + getattr(model.cfg, "n_registers", 0) if label == "block" else 0
    out = {f"residual after {label} {i + 1}": ratio(rows(capture(model, stages[i], images, output=True),
                                                         channels_first=label == "stage", skip=skip))
           for i in picks}
    if skip > 1:
        last = capture(model, stages[-1], images, output=True).norm(dim=-1)
        out["register / patch token norm"] = float(last[:, 1:skip].mean() / last[:, skip:].median())
    for name, st in observe(model.forward_features, quantizable_layers(model), [images]).items():
        key = f"{_kind(name)} input"
        out[key] = max(out.get(key, 0.0), st.input.outlier_ratio)
    feats = model.forward_features(images)
    patches = feats["patch_tokens"].flatten(1, 2)
    out["output patch tokens"] = ratio(patches)
    mean = patches.mean(1, keepdim=True)
    out["sanity: token cos to image mean"] = float(torch.cosine_similarity(patches, mean, dim=-1).mean())
    cls = torch.nn.functional.normalize(feats["cls"], dim=-1)
    out["sanity: cls cos across images"] = float((cls @ cls.T)[~torch.eye(len(cls), dtype=torch.bool)].mean())
    out["sanity: finite"] = float(all(torch.isfinite(v).all() for v in feats.values()))
    return out
