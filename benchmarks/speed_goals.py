"""Issue 18's speed goals filled from one committed latency run and one tracking run, each unmet goal with its bound.

The bound is read from the row's per-op profile (`benchmark --profile`): the time in matmul/conv/attention kernels
against the rest, and the largest other kernels; for tracking, the time of each stage per frame.

    python benchmarks/speed_goals.py --latency benchmarks/results/amd-epyc-2c/default.json \
        --tracking benchmarks/results/amd-epyc-2c/tracking.json --out benchmarks/results/amd-epyc-2c/speed_goals.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgedino.bench.opprofile import MATMUL_OPS
from edgedino.bench.peers import PEERS
from edgedino.bench.suite import BASELINES

NAMES = {"vits16": "ViT-S/16", "convnext_tiny": "ConvNeXt-T"}
SAME_PARITY = 5e-4  # patch cosines this close count as equal parity (the 4th decimal moves between runs)


def measured(rows: list[dict], model: str, size: str, precision: str = "int8", threads: int = 2) -> list[dict]:
    return [r for r in rows if r["model"] == model and r["imgsz"] == size and r["threads"] == threads
            and r["batch"] == 1 and r["precision"] == precision and r["status"] == "measured" and r["latency_ms"]]


def worse(row: dict) -> float:
    """The row's parity: the worse of its patch and cls cosines (-1 when it has neither)."""
    return min((c for c in (row.get("parity_cos"), row.get("cls_cos")) if c is not None), default=-1.0)


def ours(rows: list[dict], model: str, size: str, parity: float = -1.0) -> dict | None:
    """The fastest int8 artifact of edgedino's own exports that passed verification, at `parity` or better."""
    candidates = [r for r in measured(rows, model, size) if r["target"] not in BASELINES + tuple(PEERS)
                  and worse(r) >= parity]
    return min(candidates, key=lambda r: r["latency_ms"]["median"], default=None)


def times_eager(row: dict) -> str:
    return "-" if row.get("speedup_vs_torch") is None else f"{row['speedup_vs_torch']:.2f}"


def bound(row: dict, rows: list[dict], borrow: bool, peaks: dict) -> str:
    """What the profile says bounds this row: its time in matmul/conv/attention kernels against the rest, and the
    largest other kernels. A row without a profile (Core ML: no op profiler) says so; with `borrow` (a goal on
    the model, not on one runtime) it shows the fastest profiled row of ours at the same model, size and precision
    instead."""
    prefix = ""
    if "ops" not in (row.get("profile") or {}) and not borrow:
        return (row.get("profile") or {}).get("none", "not profiled")
    if "ops" not in (row.get("profile") or {}):
        profiled = [r for r in measured(rows, row["model"], row["imgsz"], row["precision"], row["threads"])
                    if "ops" in (r.get("profile") or {}) and r["target"] not in PEERS]
        if not profiled:
            return "no per-op profile"
        why = (row.get("profile") or {}).get("none", "not profiled")
        row, prefix = min(profiled, key=lambda r: r["latency_ms"]["median"]), f"{why}; "
        prefix += f"{row['target']} {row['precision']} ({row['latency_ms']['median']:.1f} ms) instead: "
    prof, median = row["profile"], row["latency_ms"]["median"]
    others = [o for o in prof["ops"] if o["op"].split("/")[0] not in MATMUL_OPS][:3]
    rate = ""
    if row.get("gmacs_per_s") and prof["matmul_share"] > 0:  # the model's MACs over its matmul kernels' time
        kind = "int8" if row["precision"] == "int8" else "fp32"
        rate = (f" (model MACs over their time: {row['gmacs_per_s'] / prof['matmul_share']:.0f} GMAC/s; this run's "
                f"{kind} GEMM peak: {peaks[str(row['threads'])][kind]:.0f})")
    return (prefix + f"matmul/conv/attention kernels {median * prof['matmul_share']:.1f} ms "
            f"({100 * prof['matmul_share']:.0f} %){rate}, the rest {median * (1 - prof['matmul_share']):.1f} ms, "
            "largest: " + ", ".join(f"{o['op']} {100 * o['share']:.0f} %" for o in others))


def goal_lines(latency: dict, tracking: dict | None) -> list[str]:
    rows = latency["rows"]
    out = ["| goal | measured | met | bound (from the row's profile) |", "| --- | --- | --- | --- |"]

    def line(goal: str, row: dict | None, met: bool, value: str, met_text: str | None = None,
             borrow: bool = True) -> None:
        if row is None:
            out.append(f"| {goal} | no measured row | no | - |")
            return
        out.append(f"| {goal} | {value} | {met_text or ('yes' if met else 'no')} | "
                   f"{'-' if met else bound(row, rows, borrow, latency['peak_gmacs'])} |")

    for model, size, ms, speedup in (("vits16", "224x224", 6.5, 6.5), ("convnext_tiny", "224x224", 7.5, 5.5),
                                     ("vits16", "448x448", 30.0, None)):
        best = ours(rows, model, size)
        goal = f"{NAMES[model]} int8, {size.split('x')[0]}: ≤ {ms:g} ms" + (f" (≥ {speedup:g}× eager)" if speedup
                                                                             else "")
        if best:
            x, ms_met = best.get("speedup_vs_torch") or 0.0, best["latency_ms"]["median"] <= ms
            met_text = f"ms: {'yes' if ms_met else 'no'}" + (f", ×: {'yes' if x >= speedup else 'no'}" if speedup
                                                               else "")
            line(goal, best, ms_met,
                 f"{best['target']} {best['latency_ms']['median']:.1f} ms ({times_eager(best)}× eager)",
                 met_text=met_text)
        else:
            line(goal, None, False, "")
    for model, target, speedup in (("vits16", "onnx", 3.0), ("convnext_tiny", "onnx", 3.0),
                                   ("convnext_tiny", "tflite", 2.5)):
        row = next((r for r in measured(rows, model, "224x224") if r["target"] == target), None)
        line(f"{NAMES[model]} {target} int8, 224: ≥ {speedup:g}× eager", row,
             bool(row) and (row.get("speedup_vs_torch") or 0.0) >= speedup,
             f"{row['latency_ms']['median']:.1f} ms ({times_eager(row)}× eager)" if row else "", borrow=False)
    for model in NAMES:
        for peer in PEERS:
            row = next((r for r in rows if r["model"] == model and r["imgsz"] == "224x224" and r["threads"] == 2
                        and r["batch"] == 1 and r["target"] == peer and r["latency_ms"]), None)
            goal = f"{NAMES[model]} 224: best artifact ≥ 2× faster than {peer} at equal or better parity"
            best = ours(rows, model, "224x224", worse(row) - SAME_PARITY) if row else None
            if row is None or best is None:
                line(goal, None, False, "")
                continue
            ratio = row["latency_ms"]["median"] / best["latency_ms"]["median"]
            value = (f"{peer} {row['latency_ms']['median']:.1f} ms, parity {worse(row):.4f} ({row['status']}); ours "
                     f"({best['target']}) {ratio:.2f}× faster, parity {worse(best):.4f}")
            line(goal, best, ratio >= 2, value)
    if tracking is not None:
        goal = "`apps/track.py` ViT-S/16, short side 448: ≥ 15 FPS"
        track = [m for m in tracking["methods"] if m["method"].startswith("vits16") and m.get("fps")
                 and (m.get("short_side") or min(m.get("input_hw") or [0])) == 448]
        for m in track:
            stages = ", ".join(f"{k} {v:.0f} ms" for k, v in (m.get("ms") or {}).items())
            out.append(f"| {goal} | {m['method']} {m['fps']:.1f} FPS | {'yes' if m['fps'] >= 15 else 'no'} | "
                       f"per frame: {stages} |")
        if not track:
            out.append(f"| {goal} | no measured row | no | - |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=Path, required=True, help="a default-suite benchmark JSON")
    parser.add_argument("--tracking", type=Path, help="a benchmark tracking JSON with short side 448")
    parser.add_argument("--out", type=Path, required=True, help="the Markdown page to write")
    args = parser.parse_args()
    latency = json.loads(args.latency.read_text())
    tracking = json.loads(args.tracking.read_text()) if args.tracking else None
    cpu = latency["machine"]["cpu"]
    lines = ["# Speed goals (issue 18), from one benchmark run", "",
             f"- latency: `{args.latency.name}`; machine: {cpu['model']}, {cpu['cores']} cores, flags "
             f"{' '.join(cpu['flags'])}",
             f"- tracking: `{args.tracking.name}`" if args.tracking else "- tracking: not given",
             "- 2 threads, batch 1; the ms goals were set on another machine (intel-xeon-2c), the × eager goals are "
             "ratios within this run; parity is the worse of the cls and patch cosines against PyTorch, and parities "
             f"within {SAME_PARITY:g} count as equal",
             "- OpenVINO's `Subgraph` kernels are its fused snippets; in ViT-S/16 the int8 one holds the attention "
             "(QKᵀ, softmax, AV), so its share grows with the token count", ""]
    lines += goal_lines(latency, tracking)
    from edgedino.atomic import atomic_path

    with atomic_path(args.out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
