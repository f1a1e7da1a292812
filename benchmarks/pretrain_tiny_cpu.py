"""Evidence for `edgedino pretrain`: a tiny-cpu run on real photos and video frames, against random init.

    python benchmarks/pretrain_tiny_cpu.py prepare --shared ../shared/data --work /tmp/pretrain_bench
    OMP_NUM_THREADS=1 nice -n 5 edgedino pretrain --preset tiny-cpu \
        --data /tmp/pretrain_bench/photos:weight=30 /tmp/pretrain_bench/frames --out /tmp/pretrain_bench/run \
        run.total_steps=600 run.checkpoint_every=50
    python benchmarks/pretrain_tiny_cpu.py report --shared ../shared/data --work /tmp/pretrain_bench \
        --results benchmarks/results/intel-xeon-2c

`prepare` writes 7 photos (short side 256) and every 2nd frame of vtest.avi (short side 192) as JPEG files (random
access into the AVI costs ~150 ms a frame here), and a labelled digits set from digits.png (100 per class).
The 4 photos the dense metric uses (messi5, home, butterfly, box_in_scene) and digits.png are not trained on.
`report` scores random init (the run's own seed) and the trained teacher: k-NN and linear probe on digits,
homography patch correspondence on the held-out photos; writes pretrain_tiny_cpu.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

HELD_OUT = ("messi5", "home", "butterfly", "box_in_scene")
TRAIN_PHOTOS = ("baboon", "basketball1", "basketball2", "box", "fruits", "rubberwhale1", "rubberwhale2")
DENSE_SIZE = (160, 160)
IMGSZ = 64


def small(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    k = short / min(h, w)
    return cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)


def prepare(shared: Path, work: Path) -> None:
    (work / "photos").mkdir(parents=True, exist_ok=True)
    (work / "frames").mkdir(exist_ok=True)
    for name in TRAIN_PHOTOS:
        src = next(shared.glob(f"{name}.*"))
        cv2.imwrite(str(work / "photos" / f"{name}.jpg"), small(cv2.imread(str(src)), 256))
    cap = cv2.VideoCapture(str(shared / "vtest.avi"))
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % 2 == 0:
            cv2.imwrite(str(work / "frames" / f"{i:04d}.jpg"), small(frame, 192))
        i += 1
    digits = cv2.imread(str(shared / "digits.png"), cv2.IMREAD_GRAYSCALE)
    for d in range(10):
        (work / "digits" / str(d)).mkdir(parents=True, exist_ok=True)
        cells = [digits[r * 20:(r + 1) * 20, c * 20:(c + 1) * 20] for r in range(5 * d, 5 * d + 5) for c in range(100)]
        for j, cell in enumerate(cells[::5]):
            cv2.imwrite(str(work / "digits" / str(d) / f"{j:03d}.png"), cell)


def random_init(run: Path, out: Path) -> Path:
    """The run's starting weights: the same seed and model as step 0 of the run."""
    import torch

    from edgedino.train.checkpoint import export_backbone, load_checkpoint
    from edgedino.train.config import config_from_dict
    from edgedino.train.ssl import build_backbone

    cfg = config_from_dict(load_checkpoint(run)["config"])
    torch.manual_seed(cfg.run.seed)
    return export_backbone(build_backbone(cfg), out)


def dense(weights: Path, shared: Path) -> float:
    """Mean homography correspondence accuracy (%) over the held-out photos, 5 seeded warps each."""
    from edgedino.bench.dense import correspondence_accuracy, pairs
    from edgedino.runtime import load
    from edgedino.runtime.preprocess import read_image

    rt = load(weights)
    frames = [read_image(next(shared.glob(f"{n}.*"))) for n in HELD_OUT]
    scores = []
    for seed in range(5):
        for a, b, H in pairs(frames, DENSE_SIZE, seed):
            f = rt.features([a, b], short_side=DENSE_SIZE[0]).patch_tokens
            scores.append(correspondence_accuracy(f[0], f[1], H, rt.stride))
    return float(np.mean(scores))


def score(weights: Path, work: Path, shared: Path) -> dict:
    from edgedino.cli.eval import evaluate

    knn = evaluate("knn", str(work / "digits"), str(weights), None, IMGSZ)
    lin = evaluate("linear", str(work / "digits"), str(weights), None, IMGSZ)
    return {"knn_k10": knn["top1_k10"], "knn_k20": knn["top1_k20"], "linear": lin["top1"],
            "dense": dense(weights, shared)}


def plot(records: list[dict], ln_k: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(2, 4, figsize=(17, 6.5))
    for ax, key in zip(axes.flat, ("loss", "dino", "ibot", "koleo", "gram", "images_per_s"), strict=False):
        ax.plot(steps, [r[key] for r in records], lw=0.8)
        ax.set_title(key if key != "images_per_s" else "images/s (shared machine: noisy)")
        ax.set_xlabel("step")
    axes.flat[1].axhline(ln_k, color="r", lw=0.8, ls="--", label="ln K (uniform targets)")
    axes.flat[1].legend()
    ax = axes.flat[6]
    for key in ("target_entropy", "teacher_entropy"):
        ax.plot(steps, [r[key] for r in records], lw=0.8, label=key.replace("_", " "))
    ax.axhline(1.0, color="r", lw=0.8, ls="--", label="uniform")
    ax.set_title("teacher: normalised entropies")
    ax.set_xlabel("step")
    ax.legend()
    axes.flat[7].plot(steps, [r["feature_std"] for r in records], lw=0.8)
    axes.flat[7].set_title("teacher CLS spread (std x sqrt(D))")
    axes.flat[7].set_xlabel("step")
    fig.suptitle(f"edgedino pretrain --preset tiny-cpu ({len(records)} steps, 2-core shared Xeon)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def collapse(records: list[dict], ln_k: float, after: int) -> dict:
    """The collapse signals past warm-up: the highest entropies, the last values, steps the monitor would flag."""
    late = [r for r in records if r["step"] >= after]
    return {"ln_k": round(ln_k, 3), "max_teacher_entropy": round(max(r["teacher_entropy"] for r in late), 4),
            "max_target_entropy": round(max(r["target_entropy"] for r in late), 4),
            "last_teacher_entropy": round(records[-1]["teacher_entropy"], 4),
            "last_target_entropy": round(records[-1]["target_entropy"], 4),
            "last_dino_minus_ln_k": round(records[-1]["dino"] - ln_k, 3),
            "steps_flagged_uniform": sum(r["teacher_entropy"] > 0.98 for r in late)}


def report(shared: Path, work: Path, results: Path, run: Path, name: str) -> None:
    from edgedino.bench.machine import cpu, versions
    from edgedino.train.checkpoint import load_checkpoint
    from edgedino.train.config import config_from_dict, fraction
    from edgedino.train.metrics import read_metrics

    records = read_metrics(run)
    cfg = config_from_dict(load_checkpoint(run)["config"])
    ln_k = float(np.log(cfg.heads.out_dim))
    init = random_init(run, work / "init.pth")
    numbers = {"random_init": score(init, work, shared), "trained": score(run / "backbone.pth", work, shared)}
    seconds = sum(r["seconds"] for r in records)
    batch = round(records[0]["images_per_s"] * records[0]["seconds"])
    out = {"steps": len(records), "batch": batch, "train_seconds": round(seconds, 1),
           "images_per_s_mean": round(len(records) * batch / seconds, 2),
           "images_per_s_median_step": round(float(np.median([r["images_per_s"] for r in records])), 2),
           "first": {k: records[0][k] for k in ("loss", "dino", "ibot", "koleo", "gram")},
           "last": {k: records[-1][k] for k in ("loss", "dino", "ibot", "koleo", "gram")},
           "collapse": collapse(records, ln_k, fraction(cfg.optim.warmup, cfg.run.total_steps)),
           **numbers, "machine": cpu(), "versions": versions()}
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(records, ln_k, results / f"{name}.png")
    rows = [("k-NN digits top-1, k=10 (%)", "knn_k10"), ("k-NN digits top-1, k=20 (%)", "knn_k20"),
            ("linear probe digits top-1 (%)", "linear"), ("dense correspondence (%)", "dense")]
    table = "\n".join(f"| {name} | {numbers['random_init'][k]:.1f} | {numbers['trained'][k]:.1f} |" for name, k in rows)
    print(table)
    warmup = fraction(cfg.optim.warmup, cfg.run.total_steps)
    (results / f"{name}.md").write_text(TEMPLATE.format(table=table, **out, cpu=out["machine"]["model"], name=name,
                                                        warmup=warmup))


TEMPLATE = """# tiny-cpu pretraining: trained vs random init

{steps} steps x {batch} images in {train_seconds:.0f} s of step time ({images_per_s_mean:.1f} images/s on average,
median step {images_per_s_median_step:.1f} images/s) on a {cpu}, 2 cores **shared with other engineers' jobs**:
throughput is noisy. OMP_NUM_THREADS=1 (2 spinning OpenMP threads on the shared cores made steps 5-8x slower).

| metric | random init | trained |
|---|---|---|
{table}

Head collapse check, past warm-up (step >= {warmup}):
- teacher softmax entropy at most {collapse[max_teacher_entropy]:.3f} of ln K, {collapse[last_teacher_entropy]:.3f} at
  the end (the collapse monitor warns above 0.98: {collapse[steps_flagged_uniform]} steps above it);
- Sinkhorn target entropy at most {collapse[max_target_entropy]:.3f},
  {collapse[last_target_entropy]:.3f} at the end (1 = uniform);
- DINO loss at the end: ln K {collapse[last_dino_minus_ln_k]:+.3f} (ln K + 0 is what uniform targets give).

- Model: tiny-cpu (ViT/8, dim 128, 4 blocks, 4 registers, LayerScale init 1.0), 64 px global / 32 px local crops,
  K = 1024, teacher temperature 0.04, DINO + iBOT + KoLeo from step 0, prototypes frozen for the first 15 %
  (heads.freeze_prototypes), Gram anchoring from step 300 (Gram teacher refreshed at 300 and 500). Random init is
  the same model with the run's seed (the weights step 0 starts from). The teacher (backbone.pth) is scored.
- Data: 7 photos of OpenCV's samples (short side 256, weight 30) and every 2nd frame of vtest.avi (398 frames,
  short side 192). Not trained on: digits.png and the 4 photos of the dense metric.
- k-NN (k = 10/20, T = 0.07, CLS) and linear probe ([CLS; mean patch]) on 1000 digits of digits.png (100 per
  class, 20x20 resized to 64x64), stratified 70/30 split (`edgedino eval`).
- Dense: patch correspondence under 5 seeded homographies of each of the 4 held-out photos at 160x160 (20x20
  patches), mutual nearest neighbours within one patch (`edgedino.bench.dense`).
- Loss: {first[loss]:.3f} -> {last[loss]:.3f} (dino {first[dino]:.3f} -> {last[dino]:.3f}, ibot {first[ibot]:.3f} ->
  {last[ibot]:.3f}, koleo {first[koleo]:.3f} -> {last[koleo]:.3f}); curves in {name}.png.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=("prepare", "report"))
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--work", type=Path, default=Path("/tmp/pretrain_bench"))
    p.add_argument("--results", type=Path, default=Path("benchmarks/results/intel-xeon-2c"))
    p.add_argument("--run", type=Path, help="the run folder to score (default WORK/run)")
    p.add_argument("--name", default="pretrain_tiny_cpu", help="file name of the results (default pretrain_tiny_cpu)")
    a = p.parse_args()
    if a.stage == "prepare":
        prepare(a.shared, a.work)
    else:
        report(a.shared, a.work, a.results, a.run or a.work / "run", a.name)


if __name__ == "__main__":
    main()
