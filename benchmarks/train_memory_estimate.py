"""How close is the training-step memory estimate (edgedino.train.memory) to what a step really takes?

For each (preset, overrides, batch): one fresh process measures the estimate; another sets its libraries up with
one step of 2 images, then runs two real steps of the shared loop (no loader workers) and reports how far its peak
RSS rose above the RSS it had when the loop started. Batches are large against the set-up step, whose freed memory
the allocator may hand out again.
Linux only (reads /proc/self/status). Usage: python benchmarks/train_memory_estimate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

CASES = [("tiny-cpu", [], 32), ("tiny-cpu", [], 128), ("distill:tiny-cpu", ["--student", "vit_test"], 64),
         ("distill:distill", ["--teacher", "vit_test", "--student", "vits16"], 16)]

CHILD = r"""
import json, sys, tempfile
from pathlib import Path
import torch
from edgedino.train import distributed, schedules
from edgedino.train.memory import estimate

mode, preset, batch, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
assets = str(Path("edgedino/assets").resolve())
if preset.startswith("distill:"):
    from edgedino.cli import distill as cli
    from edgedino.train.distill_step import DistillStep
    from edgedino.train.distill import make_distill_transform, teacher_size
    from edgedino.train.teacher import load_teacher
    import argparse
    p = argparse.ArgumentParser(); cli.add_arguments(p)
    args = p.parse_args(["--preset", preset.split(":")[1], "--data", assets, "--out", "x", *extra,
                         f"run.batch={batch}", "data.workers=0"])
    cfg = cli.config_from_args(args)
    d = distributed.Dist()
    teacher, kind = load_teacher(None, cfg.distill.teacher, cfg.distill.targets, "cpu")
    step = DistillStep(cfg, teacher, kind, d)
    transform = make_distill_transform(cfg, kind, teacher_size(cfg, teacher.backbone.stride))
else:
    from edgedino.train.config import load_config, preset_path
    from edgedino.train.run import make_transform
    from edgedino.train.pretrain_step import SSLStep
    cfg = load_config(preset_path(preset), [f"run.batch={batch}", "data.workers=0", *extra])
    cfg.data.sources = [assets]
    d = distributed.Dist()
    step, transform = SSLStep(cfg, d), make_transform(cfg)

def status(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024

if mode == "estimate":
    est = estimate(step, transform, schedules.at(cfg, 0), cfg.run.amp, "cpu", 0)
    print(json.dumps({"bytes": est.at(batch)}))
else:
    from edgedino.train.memory import step_peak, synthetic_batch
    step_peak(step, synthetic_batch(transform, 2), schedules.at(cfg, 0), cfg.run.amp, "cpu")  # libraries set up
    from edgedino.data.loader import DataConfig, make_loader
    from edgedino.train.loop import train
    from edgedino.train.config import config_dict
    data = DataConfig(sources=list(cfg.data.sources), workers=0)
    stream = iter(make_loader(data, transform, batch_size=batch, seed=0))
    first = next(stream)
    batches = lambda start: iter([first, first])
    Path("/proc/self/clear_refs").write_text("5")
    base = status("VmRSS")
    with tempfile.TemporaryDirectory() as out:
        train(step, cfg.run, cfg.optim, lambda s: schedules.at(cfg, s), batches, d, Path(out), config_dict(cfg), 2)
    print(json.dumps({"bytes": status("VmHWM") - base}))
"""


def child(mode: str, preset: str, batch: int, extra: list[str]) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, preset, str(batch), *extra], capture_output=True,
                          text=True, env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"}, timeout=3600)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["bytes"]


def main() -> None:
    print(f"{'config':<34}{'batch':>6}{'estimate GB':>13}{'measured GB':>13}{'estimate/measured':>19}")
    with tempfile.TemporaryDirectory():
        for preset, extra, batch in CASES:
            est, real = child("estimate", preset, batch, extra), child("measure", preset, batch, extra)
            name = f"{preset} {' '.join(extra)}".strip()
            print(f"{name:<34}{batch:>6}{est / 1e9:>13.2f}{real / 1e9:>13.2f}{est / real:>19.2f}")


if __name__ == "__main__":
    main()
