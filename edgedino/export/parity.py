"""Parity of an artifact against PyTorch fp32: cosine similarity and max abs difference per output."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from edgedino.export.module import ExportModule


@dataclass
class Parity:
    """One output's agreement with PyTorch over the verification images."""

    output: str
    cosine_mean: float  # over images and tokens (each token's D-dim vector)
    cosine_min: float
    max_abs: float
    finite: bool = True  # every value of the artifact's output is finite
    reference_finite: bool = True  # every value of PyTorch's output is finite

    def to_dict(self) -> dict:
        return asdict(self)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching vectors along the last axis, flattened over the rest."""
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(denom, 1e-12)


@torch.no_grad()
def reference(module: ExportModule, inputs: np.ndarray) -> list[dict[str, np.ndarray]]:
    """PyTorch fp32 outputs, one dict per input sample."""
    outs = []
    for x in inputs:
        values = module(torch.from_numpy(np.ascontiguousarray(x[None])))
        outs.append({name: v.numpy() for name, v in zip(module.output_names, values, strict=True)})
    return outs


def run_each(runtime, inputs: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The artifact's outputs for each sample; a static batch of B is fed B copies and the first result kept."""
    batch = runtime.input_shape[0] if runtime.input_shape[0] > 0 else 1
    outs = []
    for x in inputs:
        got = runtime.run(np.repeat(x[None], batch, axis=0))
        outs.append({k: v[:1] for k, v in got.items()})
    return outs


def compare(runtime, inputs: np.ndarray, expected: list[dict[str, np.ndarray]]) -> list[Parity]:
    """Run the artifact on each sample and compare every output it shares with PyTorch."""
    got = run_each(runtime, inputs)
    report = []
    for name in expected[0]:
        if expected[0][name].size == 0:
            continue
        pairs = [(g[name], e[name]) for g, e in zip(got, expected, strict=True)]
        cos = np.concatenate([cosines(g, e) for g, e in pairs])
        diff = max(float(np.abs(g - e).max()) for g, e in pairs)
        report.append(Parity(name, float(cos.mean()), float(cos.min()), diff,
                             all(bool(np.isfinite(g).all()) for g, _ in pairs),
                             all(bool(np.isfinite(e).all()) for _, e in pairs)))
    return report
