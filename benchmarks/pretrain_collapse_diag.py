"""Diagnostic for the tiny-cpu head collapse: short runs, the DINO loss against ln K and the teacher's entropies.

    OLD="loss.teacher_temp=0.07 loss.teacher_temp_start=0.04 loss.teacher_temp_warmup=0.1"  # the earlier preset's
    DIAG="python benchmarks/pretrain_collapse_diag.py run --work /tmp/pretrain_bench"
    $DIAG ls1e-5 model.arch.layerscale_init=1e-5 $OLD
    $DIAG ls0.1 model.arch.layerscale_init=0.1 $OLD
    $DIAG ls1 $OLD
    $DIAG ls1_t0.04   # tiny-cpu as it is now
    python benchmarks/pretrain_collapse_diag.py table /tmp/pretrain_bench/diag/*

`run` trains one variant (tiny-cpu + the given overrides, the 600-step schedules, stopped after --steps) into
WORK/diag/NAME; run several in separate shells (OMP_NUM_THREADS=1 nice -n 5). `table` prints, per run and step,
dino - ln K (0: the targets are uniform, nothing left to learn), the normalised entropy of the Sinkhorn targets
(1 = uniform) and of the teacher's softmax, and the spread of the teacher's CLS (feature_std).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

STEPS_SHOWN = (0, 10, 25, 50, 75, 100, 125, 149, 199, 299, 399, 499, 599)


def run(work: Path, name: str, overrides: list[str], steps: int) -> tuple[Path, int]:
    """Train tiny-cpu + overrides on the benchmark's data for `steps` steps of the 600-step run; (folder, K)."""
    from edgedino.train.config import load_config, preset_path
    from edgedino.train.pretrain import pretrain

    data = [f"{work / 'photos'}:weight=30", str(work / "frames")]
    cfg = load_config(preset_path("tiny-cpu"), ["run.total_steps=600", "run.checkpoint_every=1000",
                                                f"data.sources={data}", *overrides])
    out = work / "diag" / name
    pretrain(cfg, out, max_steps=steps)
    return out, cfg.heads.dino.out_dim


def table(runs: list[Path], out_dim: int = 1024) -> str:
    """Markdown rows: run, step, dino, dino - ln K, target entropy, teacher entropy, feature std."""
    from edgedino.train.metrics import read_metrics

    ln_k = math.log(out_dim)

    lines = ["| run | step | dino | dino - ln K | Sinkhorn target entropy | teacher softmax entropy | CLS spread |",
             "|---|---|---|---|---|---|---|"]
    for path in runs:
        records = {r["step"]: r for r in read_metrics(path)}
        for s in STEPS_SHOWN:
            r = records.get(s)
            if r is None:
                continue
            lines.append(f"| {path.name} | {s} | {r['dino']:.3f} | {r['dino'] - ln_k:+.3f} | "
                         f"{r.get('target_entropy', float('nan')):.4f} | {r['teacher_entropy']:.4f} | "
                         f"{r['feature_std']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train one variant for --steps steps")
    r.add_argument("--work", type=Path, default=Path("/tmp/pretrain_bench"))
    r.add_argument("--steps", type=int, default=150)
    r.add_argument("name")
    r.add_argument("overrides", nargs="*", help="key=value config overrides")
    t = sub.add_parser("table", help="the collapse signals of finished runs")
    t.add_argument("runs", nargs="+", type=Path)
    t.add_argument("--out-dim", type=int, default=1024, help="K, the runs' heads.dino.out_dim (default tiny-cpu's)")
    a = p.parse_args()
    if a.cmd == "run":
        out, k = run(a.work, a.name, a.overrides, a.steps)
        print(table([out], k))
    else:
        print(table(a.runs, a.out_dim))


if __name__ == "__main__":
    main()
