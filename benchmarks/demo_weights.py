"""The demo model shipped in edgedino/assets/demo/: trained with `edgedino pretrain --preset demo-dense` on a few
hundred images (OpenCV samples), scored against random init of the same network. NOT DINOv3.

    python benchmarks/pretrain_tiny_cpu.py prepare --shared ../shared/data --work /tmp/demo_bench
    OMP_NUM_THREADS=1 nice -n 10 edgedino pretrain --preset demo-dense \
        --data /tmp/demo_bench/photos:weight=30 /tmp/demo_bench/frames --out /tmp/demo_bench/demo data.workers=0
    (a run that was stopped continues exactly: the same command with --resume)
    python benchmarks/demo_weights.py report --shared ../shared/data --work /tmp/demo_bench \
        --results benchmarks/results/amd-epyc-2c
    python benchmarks/demo_weights.py ship --work /tmp/demo_bench

Data (benchmarks/pretrain_tiny_cpu.py prepare): 7 photos of OpenCV's samples (short side 256, drawn 30x per epoch)
and every 2nd frame of vtest.avi (398 frames, short side 192); seed 0 (run.seed). `report` scores random init
and the trained teacher on digits k-NN / linear probe (held out), homography patch correspondence on 4 held-out
photos, and `edgedino benchmark tracking --data synth:8` (sequences composed from the shipped photos, some of
which were trained on). `ship` copies the teacher backbone into the package with its record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from pretrain_tiny_cpu import random_init, score  # benchmarks/ is on sys.path when this file runs

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "edgedino" / "assets" / "demo"
TRACK_ROWS = ("J_mean", "F_mean", "JF_mean", "box_iou_mean")


def tracking(weights: list[Path], out: Path) -> dict:
    """`edgedino benchmark tracking --data synth:8` on both checkpoints (PyTorch runtime, short side 224)."""
    cmd = [sys.executable, "-m", "edgedino", "benchmark", "tracking", "--data", "synth:8", "--model",
           ",".join(str(w) for w in weights), "--short-side", "224", "--threads", "1", "--json", str(out)]
    subprocess.run(cmd, check=True)
    data = json.loads(out.read_text())
    return {r["method"]: {k: r.get(k) for k in TRACK_ROWS} for r in data["methods"] + data["baselines"]}


def report(shared: Path, work: Path, run: Path, results: Path) -> None:
    from edgedino.bench.machine import cpu, versions
    from edgedino.train.metrics import read_metrics

    init = random_init(run, work / "demo_init.pth")
    trained = run / "backbone.pth"
    numbers = {"random_init": score(init, work, shared), "trained": score(trained, work, shared)}
    track = tracking([init, trained], work / "demo_tracking.json")
    records = read_metrics(run)
    out = {"steps": len(records), "train_seconds": round(sum(r["seconds"] for r in records), 1), **numbers,
           "tracking_synth8": track, "machine": cpu(), "versions": versions()}
    results.mkdir(parents=True, exist_ok=True)
    (results / "demo_weights.json").write_text(json.dumps(out, indent=2) + "\n")
    (results / "demo_weights.md").write_text(page(out))
    print(page(out))


def page(out: dict) -> str:
    """demo_weights.md: the demo model against random init of the same network."""
    init, trained = out["random_init"], out["trained"]
    rows = [(label, f"{init[k]:.1f}", f"{trained[k]:.1f}") for label, k in (
        ("k-NN digits top-1, k=10 (%)", "knn_k10"), ("k-NN digits top-1, k=20 (%)", "knn_k20"),
        ("linear probe digits top-1 (%)", "linear"), ("dense correspondence, held-out photos (%)", "dense"))]
    track = out["tracking_synth8"]
    a, b, still = track["demo_init.pth"], track["backbone.pth"], track["no-motion"]
    rows += [(f"tracking synth:8 {name}", f"{a[k]:.3f}", f"{b[k]:.3f}") for name, k in (
        ("J", "J_mean"), ("F", "F_mean"), ("J&F", "JF_mean"), ("box IoU", "box_iou_mean"))]
    table = "\n".join(f"| {label} | {x} | {y} |" for label, x, y in rows)
    return PAGE.format(table=table, still=still["JF_mean"], steps=out["steps"], cpu=out["machine"]["model"],
                       seconds=out["train_seconds"])


PAGE = """# The demo model (edgedino/assets/demo): trained vs random init

**A demo model trained on a few hundred images, not DINOv3.** It is what `make demo`, `edgedino features`,
`edgedino info` and `edgedino export` use when no `--weights` (and no `--model`) is given, so that the first
picture a user sees is not noise. Use official DINOv3 weights for anything real.

| metric | random init (same network, seed 0) | demo model |
|---|---|---|
{table}

No-motion (the first mask copied to every frame) gives J&F {still:.3f} on the same sequences.

- Network: ViT/8, dim 128, 4 blocks, 4 registers, LayerScale 1.0 (the tiny-cpu architecture), 3.3 MB.
- Training: `edgedino pretrain --preset demo-dense` (96 px global / 48 px local crops, iBOT weighted 2x, Gram
  anchoring from half-way against a 1.5x undistorted Gram teacher), {steps} steps of 32 images, seed 0, in
  {seconds:.0f} s of step time on {cpu} (2 cores shared with other jobs; `nice`, OMP_NUM_THREADS=1).
- Data: 7 OpenCV sample photos (short side 256, drawn 30x per epoch) and every 2nd frame of vtest.avi (398 frames,
  short side 192): 405 images. Held out: digits.png (k-NN, linear probe) and messi5, home, butterfly,
  box_in_scene (dense correspondence). The synth:8 tracking sequences are composed from the shipped photos (four
  of which were not trained on) and are not a held-out benchmark: they show the demo model working, nothing more.
- Tracking: `edgedino benchmark tracking --data synth:8` (label propagation, PyTorch runtime, short side 224,
  1 thread); J, F (DAVIS definitions) and box IoU are means over all objects.
- Commands: `benchmarks/demo_weights.py` (docstring). A run that stops (this one was stopped at step 915 and
  resumed from its step-900 checkpoint) continues exactly with `--resume`.
"""


def ship(work: Path, run: Path) -> None:
    """The teacher backbone and its record into edgedino/assets/demo/ (the record from the run's checkpoint)."""
    from dataclasses import replace

    from edgedino.checkpoints import load_backbone, save_backbone
    from edgedino.train.run_state import load_checkpoint

    state = load_checkpoint(run)
    net = load_backbone(run / "backbone.pth")
    net.cfg = replace(net.cfg, name="demo-vit8")  # exports are named demo-vit8_<size>_<precision>
    DEMO.mkdir(parents=True, exist_ok=True)
    save_backbone(net, DEMO / "demo-vit8-dense.pth")
    record = {"what": "edgedino demo model: a ViT/8 (dim 128, 4 blocks) trained on a few hundred images; NOT DINOv3",
              "preset": "demo-dense", "steps": state["step"], "seed": state["config"]["run"]["seed"],
              "data": "7 OpenCV sample photos (baboon, basketball1, basketball2, box, fruits, rubberwhale1, "
                      "rubberwhale2; short side 256, drawn 30x per epoch) and every 2nd frame of OpenCV's vtest.avi "
                      "(398 frames, short side 192)",
              "command": "python benchmarks/pretrain_tiny_cpu.py prepare --shared ../shared/data --work W; "
                         "OMP_NUM_THREADS=1 edgedino pretrain --preset demo-dense --data W/photos:weight=30 W/frames "
                         "--out W/demo data.workers=0; python benchmarks/demo_weights.py ship --work W"}
    (DEMO / "demo-vit8-dense.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{DEMO / 'demo-vit8-dense.pth'}: {(DEMO / 'demo-vit8-dense.pth').stat().st_size / 1e6:.1f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=("report", "ship"))
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--work", type=Path, default=Path("/tmp/demo_bench"))
    p.add_argument("--run", type=Path, help="the run folder (default WORK/demo)")
    p.add_argument("--results", type=Path, default=Path("benchmarks/results/amd-epyc-2c"))
    a = p.parse_args()
    run = a.run or a.work / "demo"
    if a.stage == "report":
        report(a.shared, a.work, run, a.results)
    else:
        ship(a.work, run)


if __name__ == "__main__":
    main()
