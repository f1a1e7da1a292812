"""The int8 policy: which layers a quantized export keeps in float, decided on images calibration did not see.

For int8 the deploy form first gets SmoothQuant (edgedino.export.smooth), exact in float, so every target starts
from activations without channel outliers. Then, per --int8-policy:
- auto (the default): the layers are ranked by their sensitivity; the simulation predicts how many of the most
  sensitive must stay float for cls and patch parity to clear the threshold; the artifact is exported and checked
  in its runtime, and if it still falls short more layers stay float (doubling) until it passes or all but one
  are float (then it fails: an int8 artifact with no int8 layer is a float one, better exported as such);
  then the counts between the last failure and the pass are bisected (three more exports at most) and the fewest
  that passed is the artifact published.
  On weights without outliers the first try keeps none: the same graph as quantizing everything.
- strict: every layer quantized; below the threshold the export fails, as every export does.
- report: like strict, and the sensitivity table is printed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgedino.export.module import ExportModule
from edgedino.export.sensitivity import LayerSensitivity, Simulator
from edgedino.export.smooth import ALPHA, apply_smoothing, smoothing_scales
from edgedino.export.spec import QuantPlan
from edgedino.export.target import Int8Scheme

MARGIN = 0.002  # the simulated parity must clear the threshold by this much before an export tries a choice


@dataclass
class PrecisionPlan:
    """What every target of one quantized precision shares: SmoothQuant scales, and per int8 scheme the simulation
    and the sensitivity ranking (computed when a target first needs them)."""

    precision: str
    policy: str
    module: ExportModule  # deployed, as the backbone is (prepare() adds SmoothQuant per target)
    calib: np.ndarray
    heldout: np.ndarray
    log: Callable[[str], None]
    alpha: float | None = None  # SmoothQuant strength (int8 only)
    scales: dict = field(default_factory=dict)
    simulators: dict[Int8Scheme, Simulator] = field(default_factory=dict)
    tables: dict[Int8Scheme, list[LayerSensitivity]] = field(default_factory=dict)

    def prepare(self, module: ExportModule, scheme: Int8Scheme) -> ExportModule:
        """A module as this precision exports it for a target: SmoothQuant folded in for int8 (inside the
        normalisation where the target's converter folds norms into the next layer)."""
        if self.scales:
            apply_smoothing(module, self.scales, inside_norm=scheme.norm_folded)
        return module

    def simulator(self, scheme: Int8Scheme) -> Simulator:
        scheme = scheme if self.precision == "int8" else Int8Scheme()  # palettize4 touches weights only
        if scheme not in self.simulators:
            module = self.prepare(copy.deepcopy(self.module), scheme)
            self.simulators[scheme] = Simulator(module, self.precision, self.calib, self.heldout, scheme)
        return self.simulators[scheme]

    def table(self, scheme: Int8Scheme) -> list[LayerSensitivity]:
        """The layers the scheme quantizes, most sensitive first."""
        sim = self.simulator(scheme)
        if sim.scheme not in self.tables:
            self.log(f"    measuring each layer's {self.precision} sensitivity ({describe(sim.scheme, self.precision)})"
                     f" on held-out images")
            self.tables[sim.scheme] = sim.sensitivity()
            worst = ", ".join(f"{s.layer} ({s.error:.1e})" for s in self.tables[sim.scheme][:3])
            self.log(f"    most sensitive (1 - cosine when quantized alone): {worst}")
        return self.tables[sim.scheme]

    def clears(self, scheme: Int8Scheme, quantized: list[str], threshold: float) -> bool:
        """Whether the simulated cls and patch parity with these layers quantized clear threshold + MARGIN."""
        return min(self.simulator(scheme).parity(quantized)) >= threshold + MARGIN

    def first_count(self, scheme: Int8Scheme, ranked: list[str], threshold: float) -> int:
        """The fewest most-sensitive layers to keep float for the simulation to clear threshold + MARGIN."""
        clears = lambda k: self.clears(scheme, ranked[k:], threshold)  # noqa: E731
        if clears(0):
            return 0
        low, high = 0, 1
        while high < len(ranked) and not clears(high):
            low, high = high, min(2 * high, len(ranked))
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if clears(mid) else (mid, high)
        return high

    def report(self) -> dict[str, list[dict]]:
        """Every sensitivity table measured, by precision and scheme."""
        return {f"{self.precision} ({describe(scheme, self.precision)})": [s.to_dict() for s in table]
                for scheme, table in self.tables.items()}


def describe(scheme: Int8Scheme, precision: str) -> str:
    """What the simulation quantizes, in words."""
    if precision != "int8":
        return f"{precision} weights"
    parts = ["8-bit inputs and outputs" if scheme.outputs else "8-bit inputs"]
    parts += ["symmetric"] if scheme.symmetric else []
    parts += [] if scheme.depthwise else ["depthwise float"]
    parts += [] if scheme.weight_bits == 8 else [f"{scheme.weight_bits}-bit weights"]
    parts += ["norms folded into the next layer"] if scheme.norm_folded else []
    return ", ".join(parts)


def plan_precision(precision: str, policy: str, module: ExportModule, calib: np.ndarray, heldout: np.ndarray,
                   log: Callable[[str], None], smoothquant: float | None = ALPHA) -> PrecisionPlan:
    """The shared plan of one quantized precision: SmoothQuant scales of strength `smoothquant` (None: none) for
    int8, from the calibration images."""
    plan = PrecisionPlan(precision, policy, module, calib, heldout, log)
    if precision == "int8" and smoothquant is not None:
        plan.alpha, plan.scales = smoothquant, smoothing_scales(module, calib, smoothquant)
        if plan.scales:
            log(f"int8: SmoothQuant (alpha {smoothquant}) on {len(plan.scales)} of "
                f"{len(module.backbone.norm_consumers())} norms, whose outputs have outlier channels")
    return plan


def next_count(count: int, total: int) -> int:
    """More layers in float after a failed try: double (at least one more), at most all."""
    return min(total, max(count + 1, 2 * count))


REFINE_TRIES = 3  # at most this many more exports to narrow the gap the doubling leaves


def guarded(plan: PrecisionPlan, scheme: Int8Scheme, threshold: float, make: Callable[[QuantPlan], object],
            log: Callable[[str], None]):
    """Export through `make(QuantPlan)` (convert, publish and verify one artifact) as the policy says; the result
    records the layers kept in float and every try. The sensitivity table is measured only when it is needed: when
    the simulation of quantizing everything falls short, or an artifact does. Once a doubled count passes after a
    failure, the counts between are bisected (REFINE_TRIES more exports at most), and the fewest that passed is
    exported last, so it is what stays published."""
    if plan.policy != "auto":
        if plan.policy == "report":
            plan.table(scheme)
        return make(QuantPlan(plan.policy, (), plan.alpha))
    ranked, tries = None, []

    def attempt(count: int):
        if count:
            log(f"    keeping {count} of {len(ranked)} layers in float: {', '.join(ranked[:count])}")
        result = make(QuantPlan("auto", tuple(ranked[:count]) if count else (), plan.alpha))
        par = {p["output"]: p["cosine_mean"] for p in result.parity}
        tries.append({"float_layers": count, "cls": par.get("cls"), "patch_tokens": par.get("patch_tokens"),
                      "status": result.status})
        return result

    count, failed = 0, None
    if not plan.clears(scheme, plan.simulator(scheme).eligible, threshold):
        ranked = [s.layer for s in plan.table(scheme)]
        count = min(plan.first_count(scheme, ranked, threshold), max(len(ranked) - 1, 0))
    result = attempt(count)
    while result.status == "verify-failed" and not (ranked is not None and count >= len(ranked) - 1):
        if ranked is None:
            ranked = [s.layer for s in plan.table(scheme)]
        most = max(len(ranked) - 1, 0)  # one layer at least stays quantized: a precision with none is not that one
        failed, count = count, min(most, max(next_count(count, most), plan.first_count(scheme, ranked, threshold)))
        result = attempt(count)
    if result.status == "verify-failed":
        log(f"    {plan.precision} misses the threshold with {count} of {len(ranked or ())} layers in float: export "
            "a float precision (fp16, fp32) for this model")
    best, last = (count, result), result
    for _ in range(REFINE_TRIES if result.status == "ok" and failed is not None else 0):
        if best[0] - failed <= max(1, best[0] // 8):
            break
        mid = (failed + best[0]) // 2
        last = attempt(mid)
        if last.status == "ok":
            best = (mid, last)
        else:
            failed = mid
    result = best[1] if last is best[1] else attempt(best[0])  # the fewest that passed, published last
    result.tries = tries
    return result
