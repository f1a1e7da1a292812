"""Evidence for `edgedino distill`: a seeded random ViT-B/16 teacher (every block mattering) distilled into ViT-S/16 and
ConvNeXt-T at once, on real photos and vtest.avi frames, on the shared 2-core CPU.

    python benchmarks/distill_vitb_cpu.py prepare --shared ../shared/data --work /tmp/distill_bench
    OMP_NUM_THREADS=1 nice -n 5 edgedino distill --preset tiny-cpu --teacher-weights /tmp/distill_bench/teacher.pth \
        --student vits16 --student convnext_tiny --data /tmp/distill_bench/photos:weight=5 /tmp/distill_bench/frames \
        --out /tmp/distill_bench/run crops.global_size=96 run.total_steps=80 run.batch=16 run.checkpoint_every=20 \
        optim.lr=1e-3 ema.momentum=0.9 ema.momentum_end=0.99 > /tmp/distill_bench/run.log 2>&1
    edgedino export --target all --precision fp32,int8 --weights /tmp/distill_bench/run/vits16.pth --imgsz 96 \
        --calib /tmp/distill_bench/held_out --json /tmp/distill_bench/export_vits16.json ...  (and convnext_tiny)
    python benchmarks/distill_vitb_cpu.py report --work /tmp/distill_bench --results benchmarks/results/amd-epyc-2c

`prepare` writes the teacher (vitb16, seed 0, LayerScale in [0.3, 1], random norms and biases), the training photos
(short side 160) and every 3rd of the first 600 frames of vtest.avi (short side 128) as JPEG files; held out: the
photos messi5, home, butterfly, box_in_scene and every 10th frame from frame 640 on. `report` measures, on the held-out
images at 96 x 96, the patch-token cosine between each student and the teacher, at initialisation (the run's seed)
and for the trained EMA student: through the run's own learned projection, and through a least-squares linear map
fitted on training images (so a random student with a fitted map is the baseline, not a random projection).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

HELD_OUT = ("messi5", "home", "butterfly", "box_in_scene")
TRAIN_PHOTOS = ("baboon", "basketball1", "basketball2", "box", "fruits", "rubberwhale1", "rubberwhale2")
SIZE = 96
STUDENTS = ("vits16", "convnext_tiny")


def small(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    k = short / min(h, w)
    return cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)


def teacher(path: Path) -> None:
    """vitb16 from seed 0 with LayerScale 0.3-1, norms 1 +- 0.2, biases and tokens N(0, 0.1): every block matters."""
    import torch

    from edgedino import create_model, save_backbone

    torch.manual_seed(0)
    net = create_model("vitb16")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.3 + 0.7 * torch.rand(p.shape, generator=g))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias") or "token" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    save_backbone(net, path)


def prepare(shared: Path, work: Path) -> None:
    for sub in ("photos", "frames", "held_out"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for name in TRAIN_PHOTOS + HELD_OUT:
        img = small(cv2.imread(str(next(shared.glob(f"{name}.*")))), 160)
        cv2.imwrite(str(work / ("held_out" if name in HELD_OUT else "photos") / f"{name}.jpg"), img)
    cap = cv2.VideoCapture(str(shared / "vtest.avi"))
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i < 600 and i % 3 == 0:
            cv2.imwrite(str(work / "frames" / f"{i:04d}.jpg"), small(frame, 128))
        elif i >= 640 and i % 10 == 0:
            cv2.imwrite(str(work / "held_out" / f"{i:04d}.jpg"), small(frame, 128))
        i += 1
    teacher(work / "teacher.pth")


def batch(folder: Path):
    import torch

    from edgedino.runtime.preprocess import preprocess, read_image

    return torch.from_numpy(np.concatenate([preprocess(read_image(p), (SIZE, SIZE))
                                            for p in sorted(folder.glob("*.jpg"))]))


def fitted_map(student, teacher, probe):
    """Least-squares linear map (with bias) from the student's patch tokens to the teacher's, on the probe images."""
    import torch

    from edgedino.train.losses.feature import align_grid

    s = student.backbone.forward_features(probe)["patch_tokens"]
    t = align_grid(teacher.backbone.forward_features(probe)["patch_tokens"], tuple(s.shape[1:3]))
    a = torch.cat([s.flatten(0, 2), torch.ones(s[..., :1].flatten(0, 2).shape)], 1).double()
    w = torch.linalg.lstsq(a, t.flatten(0, 2).double(), driver="gelsd").solution.float()
    return lambda x: torch.cat([x, torch.ones(*x.shape[:3], 1)], -1) @ w


def measure(work: Path) -> dict:
    """Patch and CLS cosine to the teacher on held-out images, for each student at init and trained (its EMA).

    "centred": both sides minus the teacher's mean patch token over the probe images, so that the offset every
    token of this random teacher shares (its random biases) does not count as agreement."""
    import copy

    import torch
    import torch.nn.functional as F

    from edgedino.train import distributed
    from edgedino.train.distill_config import config_from_dict
    from edgedino.train.distill_step import DistillStep
    from edgedino.train.losses.feature import patch_cosine
    from edgedino.train.run_state import load_checkpoint
    from edgedino.train.teacher import load_teacher

    torch.set_grad_enabled(False)
    ckpt = load_checkpoint(work / "run")
    cfg = config_from_dict(ckpt["config"])
    teacher, kind = load_teacher(cfg.distill.teacher_weights, cfg.distill.teacher, cfg.distill.targets, "cpu",
                                 cfg.run.seed)
    step = DistillStep(cfg, teacher, kind, distributed.Dist())
    held_out = batch(work / "held_out")
    probe = torch.cat([batch(work / "photos"), batch(work / "frames")])  # 207 images: more tokens than features
    t = teacher.backbone.forward_features(held_out)
    mu = teacher.backbone.forward_features(probe)["patch_tokens"].mean((0, 1, 2))
    out = {"held_out_images": held_out.shape[0], "probe_images": probe.shape[0], "steps": ckpt["step"]}
    for name, init in step.students.nets.items():
        trained = copy.deepcopy(init)
        trained.load_state_dict(ckpt[f"ema.{name}"])
        for label, net in (("init", init.eval()), ("trained", trained.eval())):
            s = net(held_out)
            fitted = fitted_map(net, teacher, probe)(net.backbone.forward_features(held_out)["patch_tokens"])
            out[f"{name}.{label}"] = {
                "patch_cos": patch_cosine(s["patches_p"], t["patch_tokens"]),
                "patch_cos_centred": patch_cosine(s["patches_p"] - mu, t["patch_tokens"] - mu),
                "cls_cos": float(F.cosine_similarity(s["cls_p"], t["cls"], dim=-1).mean()),
                "patch_cos_fitted_map": patch_cosine(fitted, t["patch_tokens"]),
                "patch_cos_fitted_map_centred": patch_cosine(fitted - mu, t["patch_tokens"] - mu)}
    return out


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, part in zip(axes[:3], ("cls", "patch", "koleo"), strict=True):
        for name in STUDENTS:
            ax.plot(steps, [r[f"{name}.{part}"] for r in records], lw=1, label=name)
        ax.set_title(f"{part} loss" if part != "koleo" else "KoLeo (student CLS)")
        ax.set_xlabel("step")
        ax.legend()
    axes[3].plot(steps, [r["images_per_s"] for r in records], lw=1)
    axes[3].set_title("images/s (shared machine: noisy)")
    axes[3].set_xlabel("step")
    fig.suptitle("edgedino distill: random ViT-B/16 teacher -> ViT-S/16 + ConvNeXt-T, 96 px, 2-core shared Xeon")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def export_rows(work: Path) -> list[dict]:
    """Rows of `edgedino export --json` for each student, where the exports were run."""
    rows = []
    for name in STUDENTS:
        path = work / f"export_{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            rows += [dict(a, student=name) for a in data["artifacts"]]
    return rows


def parity(a: dict, output: str) -> str:
    p = [x for x in a.get("parity") or [] if x["output"] == output]
    return f"{p[0]['cosine_mean']:.5f} (min {p[0]['cosine_min']:.4f})" if p else "-"


def markdown(out: dict) -> str:
    """The results page: setup, cosine before/after, throughput, loss terms, export parity rows."""
    c = out["cosine"]
    rows = []
    for name in STUDENTS:
        i, t = c[f"{name}.init"], c[f"{name}.trained"]
        for key, what in (("patch_cos", "patch tokens, own projection"),
                          ("patch_cos_centred", "patch tokens, own projection, centred"),
                          ("cls_cos", "CLS, own projection"),
                          ("patch_cos_fitted_map", "patch tokens, fitted linear map"),
                          ("patch_cos_fitted_map_centred", "patch tokens, fitted linear map, centred")):
            rows.append(f"| {name} | {what} | {i[key]:.3f} | {t[key]:.3f} |")
    terms = "\n".join(f"| {k} | {out['first'][k]:.4f} | {out['last'][k]:.4f} |" for k in out["first"])
    exports = "\n".join(
        f"| {a['student']} | {a['target']} | {a['precision']} | {a['status']} | {a.get('size_mb') or 0:.1f} | "
        f"{parity(a, 'cls')} | {parity(a, 'patch_tokens')} |" for a in out["exports"]) or "| (not run) |"
    return TEMPLATE.format(rows="\n".join(rows), terms=terms, exports=exports, cpu=out["machine"]["model"],
                           **{k: out[k] for k in ("wall_seconds", "steps", "batch", "train_seconds",
                                                  "images_per_s_mean", "images_per_s_median_step")},
                           held=c["held_out_images"], probe=c["probe_images"])


TEMPLATE = """# Distillation: random ViT-B/16 teacher -> ViT-S/16 + ConvNeXt-T in one run

Teacher: `vitb16` from seed 0 with LayerScale in [0.3, 1], norms 1 +- 0.2 and random biases (so every block shapes
the output; no trained ViT-B can be built here in the time). It has no heads, so `edgedino distill` used feature
targets (CLS + patch tokens, cosine + smooth-L1, learned 384 -> 768 projection for ViT-S, identity for ConvNeXt-T
whose width is 768 too, teacher 6x6 grid averaged onto ConvNeXt's 3x3) plus KoLeo (weight 0.1). Both students
trained together on one teacher pass per batch: {steps} steps x {batch} images (2 global 96 px crops each) of the 7
training photos and 200 vtest.avi frames, optim.lr=1e-3, EMA momentum 0.9 -> 0.99 (short run).
Machine: {cpu}, 2 cores **shared with ~6 other engineers' jobs** (load average 8-10), `nice -n 5`,
OMP_NUM_THREADS=1: {wall_seconds} s wall clock for the training loop, {train_seconds:.0f} s of step time,
{images_per_s_mean:.2f} images/s on average (median step {images_per_s_median_step:.2f}) for the teacher forward
+ both students' forward/backward; a quiet machine is several times faster.

```
python benchmarks/distill_vitb_cpu.py prepare --shared ../shared/data --work /tmp/distill_bench
OMP_NUM_THREADS=1 nice -n 5 edgedino distill --preset tiny-cpu --teacher-weights /tmp/distill_bench/teacher.pth \\
    --student vits16 --student convnext_tiny --data /tmp/distill_bench/photos:weight=5 /tmp/distill_bench/frames \\
    --out /tmp/distill_bench/run crops.global_size=96 run.total_steps=80 run.batch=16 run.checkpoint_every=20 \\
    run.log_every=1 optim.lr=1e-3 ema.momentum=0.9 ema.momentum_end=0.99 > /tmp/distill_bench/run.log 2>&1
edgedino export --target all --precision fp32,int8 --weights /tmp/distill_bench/run/STUDENT.pth --imgsz 96 \\
    --calib /tmp/distill_bench/held_out --out /tmp/distill_bench/exp_STUDENT \\
    --json /tmp/distill_bench/export_STUDENT.json
python benchmarks/distill_vitb_cpu.py report --work /tmp/distill_bench --results benchmarks/results/amd-epyc-2c
```

## Patch-token cosine to the teacher on {held} held-out images (4 unseen photos, 16 later vtest frames), 96 px

"own projection": through the run's learned projection (at init: the random one). "fitted map": through a
least-squares linear map (with bias) from the student's patch tokens to the teacher's, fitted on all {probe}
training images (1863 ConvNeXt / 7452 ViT-S tokens for 769 / 385 inputs): the fair baseline for a random student.
"centred": both sides minus the teacher's mean patch token (on the training images), so that the offset all tokens
of this random teacher share does not count as agreement.
Trained = the EMA student that `<student>.pth` holds.

| student | cosine to the teacher | init | trained |
|---|---|---|---|
{rows}

## Loss terms, first and last step

| term | step 0 | last step |
|---|---|---|
{terms}

Curves: distill.png.

## Export of both students (`edgedino export --target all --precision fp32,int8 --imgsz 96`)

| student | target | precision | status | MB | cls cos (mean, min) | patch cos (mean, min) |
|---|---|---|---|---|---|---|
{exports}
"""


def report(work: Path, results: Path) -> None:
    from edgedino.bench.machine import cpu, versions
    from edgedino.train.metrics import read_metrics

    records = read_metrics(work / "run")
    seconds = sum(r["seconds"] for r in records)
    batch_size = round(records[0]["images_per_s"] * records[0]["seconds"])
    terms = [f"{n}.{p}" for n in STUDENTS for p in ("cls", "patch", "koleo")]
    log = work / "run.log"
    wall = [ln.split()[-2] for ln in log.read_text().splitlines() if ln.startswith("wall time")] if log.exists() else []
    out = {"wall_seconds": float(wall[-1]) if wall else None, "steps": len(records), "batch": batch_size,
           "train_seconds": round(seconds, 1),
           "images_per_s_mean": round(len(records) * batch_size / seconds, 2),
           "images_per_s_median_step": round(float(np.median([r["images_per_s"] for r in records])), 2),
           "first": {k: records[0][k] for k in ["loss", *terms]}, "last": {k: records[-1][k] for k in ["loss", *terms]},
           "cosine": measure(work), "exports": export_rows(work), "machine": cpu(), "versions": versions()}
    results.mkdir(parents=True, exist_ok=True)
    (results / "distill.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(records, results / "distill.png")
    text = markdown(out) + gpu_section(results.parent / "nvidia-h100" / "distill_check.txt")
    (results / "distill.md").write_text(text)
    print(text)


def gpu_section(log: Path) -> str:
    """The H100 check's summary lines (benchmarks/distill_gpu_check.sh), when its log was saved beside the results."""
    if not log.exists():
        return ""
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith(("resume:", "images/s (median"))]
    return ("\n## The same code on one H100\n\n`benchmarks/distill_gpu_check.sh` (../nvidia-h100/distill_check.txt): "
            "random vitb16 teacher -> vits16 + convnext_tiny at 224 px, batch 64, bf16 autocast, the 8 shipped photos "
            "(8 loader workers), 20 steps; then 10 steps + `--resume` for 10 more:\n\n"
            + "".join(f"- {ln}\n" for ln in lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("prepare", "report"))
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--work", type=Path, default=Path("/tmp/distill_bench"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/results/amd-epyc-2c"))
    a = p.parse_args()
    if a.what == "prepare":
        prepare(a.shared, a.work)
    else:
        report(a.work, a.results)


if __name__ == "__main__":
    main()
