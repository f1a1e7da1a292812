"""Per-layer sensitivity: how far quantizing one layer alone moves the cls and patch outputs, on held-out images.

Measured with the simulation of edgedino.export.simulate (calibrated on the calibration images, compared on
images calibration did not see), once per export and shared by every target: it ranks the layers the int8
policy keeps in float, and predicts the parity of any choice of quantized layers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from edgedino.export.observe import is_depthwise, observe, quantizable_layers
from edgedino.export.parity import cosines
from edgedino.export.simulate import simulated
from edgedino.export.target import Int8Scheme

BATCH = 8
RANKING_IMAGES = 2  # the one-layer-at-a-time table runs on the first held-out images only (it runs once a layer)


@dataclass
class LayerSensitivity:
    """One layer, quantized alone."""

    layer: str
    outlier_ratio: float  # max |x| / median |x| of its input on the calibration images
    cls_cos: float  # mean cosine with PyTorch fp32 when only this layer is quantized
    patch_cos: float

    @property
    def error(self) -> float:
        return 1.0 - min(self.cls_cos, self.patch_cos)

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(x: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(x[i:i + BATCH])) for i in range(0, len(x), BATCH)]


class Simulator:
    """An ExportModule with its layers' calibrated statistics: the parity of any set of quantized layers on the
    held-out images, for a target's int8 scheme."""

    def __init__(self, module: nn.Module, precision: str, calib: np.ndarray, heldout: np.ndarray,
                 scheme: Int8Scheme | None = None):
        self.module, self.precision, self.scheme = module.eval(), precision, scheme or Int8Scheme()
        self.layers = quantizable_layers(module)
        named = dict(module.backbone.named_modules())
        self.norms = {c: named[norm] for norm, consumers in module.backbone.norm_consumers() for c in consumers}
        self.stats = observe(module, self.layers, _batches(calib))
        self.heldout = heldout
        self.reference = self._outputs(heldout)

    @property
    def eligible(self) -> list[str]:
        """The layers this scheme quantizes."""
        return [n for n, m in self.layers.items() if self.scheme.depthwise or not is_depthwise(m)]

    @torch.no_grad()
    def _outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outs = [self.module(x)[:2] for x in _batches(images)]  # cls, patch_tokens
        return {n: np.concatenate([o[i].numpy() for o in outs]) for i, n in enumerate(("cls", "patch_tokens"))}

    def parity(self, quantized: Iterable[str], count: int | None = None) -> tuple[float, float]:
        """(cls, patch) mean cosine with fp32 on the first `count` held-out images (all by default) when the given
        layers are quantized."""
        images = self.heldout[:count]
        with simulated(self.layers, quantized, self.precision, self.stats, self.scheme, self.norms):
            got = self._outputs(images)
        ref = {n: v[:len(images)] for n, v in self.reference.items()}
        return tuple(float(cosines(got[n], ref[n]).mean()) for n in ("cls", "patch_tokens"))

    def sensitivity(self) -> list[LayerSensitivity]:
        """Every layer this scheme quantizes, quantized alone, most sensitive first."""
        table = [LayerSensitivity(name, self.stats[name].input.outlier_ratio, *self.parity([name], RANKING_IMAGES))
                 for name in self.eligible]
        return sorted(table, key=lambda s: s.error, reverse=True)
