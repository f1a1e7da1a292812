"""Is label propagation cheaper with the neighbourhood restricted before the similarity matmul? (issue 18 item 5)

The tracker's propagate (edgedino protocol) computes every query-key similarity in one matmul, then masks the square
window. The candidate here computes, for each block of B query rows, only the key rows within the radius (one
matmul per context frame), keeps each frame's top-k and merges them: the same top-k, fewer flops. Both run on the
same features (unit, ViT-S/16's 384 dims, regions of 4x4 patches plus noise), 8 context frames (7 + the first),
radius 12, top-5, at the patch grids of 640x480 frames at short side 448 (28x37) and 960 (60x80); rows alternate
within each round, so the ratios hold on a shared, noisy machine and absolute times do not. OpenBLAS threads
are what OPENBLAS_NUM_THREADS says (unset: all cores).

    OPENBLAS_NUM_THREADS=1 python benchmarks/propagate_window.py --out /tmp/pw1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgedino.track.propagate import neighbourhood_penalty, propagate, top_k

GRIDS = {448: (28, 37), 960: (60, 80)}
DIM, FRAMES, LABELS, RADIUS, K = 384, 8, 3, 12, 5
BLOCKS = (1, 4, 25)  # query rows per block


def banded(query, keys, labels, grid, block: int) -> np.ndarray:
    """propagate's output, with only the similarities of key rows within RADIUS of each query block computed."""
    (h, w), n = grid, grid[0] * grid[1]
    idx, top = np.empty((n, K), np.intp), np.empty((n, K), np.float32)
    penalty = neighbourhood_penalty(grid, RADIUS)
    for y in range(0, h, block):
        q0, q1 = y * w, min(h, y + block) * w
        k0, k1 = max(0, y - RADIUS) * w, min(h, y + block + RADIUS) * w
        cand_i, cand_v = np.empty((q1 - q0, FRAMES, K), np.intp), np.empty((q1 - q0, FRAMES, K), np.float32)
        for f in range(FRAMES):
            sim = query[q0:q1] @ keys[f, k0:k1].T + penalty[q0:q1, k0:k1]
            i, cand_v[:, f] = top_k(sim, K)
            cand_i[:, f] = i + f * n + k0
        j, top[q0:q1] = top_k(cand_v.reshape(q1 - q0, -1), K)
        idx[q0:q1] = np.take_along_axis(cand_i.reshape(q1 - q0, -1), j, axis=1)
    weights = np.exp((top - top.max(axis=1, keepdims=True)) / 0.2)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkl->nl", weights, labels.reshape(FRAMES * n, -1)[idx])


def features(grid, rng):
    h, w = grid
    coarse = rng.standard_normal((h // 4 + 1, w // 4 + 1, DIM)).astype(np.float32)
    field = coarse[np.arange(h) // 4][:, np.arange(w) // 4]
    frames = []
    for t in range(FRAMES + 1):
        f = np.roll(field, t, axis=1) + 0.3 * rng.standard_normal(field.shape).astype(np.float32)
        frames.append((f / np.linalg.norm(f, axis=-1, keepdims=True)).reshape(-1, DIM))
    labels = rng.dirichlet(np.ones(LABELS), (FRAMES, h * w)).astype(np.float32)
    return frames[-1], np.stack(frames[:-1]), labels


def measure(side: int, rounds: int, rng) -> dict:
    grid = GRIDS[side]
    query, keys, labels = features(grid, rng)
    penalty = neighbourhood_penalty(grid, RADIUS)
    rows = {"one matmul (propagate)": lambda: propagate(query, keys, labels, penalty, K, 0.2)}
    rows |= {f"banded, {b} query rows per block": (lambda b=b: banded(query, keys, labels, grid, b)) for b in BLOCKS}
    ref = rows["one matmul (propagate)"]()
    out = {name: fn() for name, fn in rows.items()}
    times = {name: [] for name in rows}
    for _ in range(rounds):
        for name, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    base = float(np.median(times["one matmul (propagate)"]))
    return {"short_side": side, "grid": list(grid), "rows": [
        {"row": name, "median_ms": float(np.median(t)), "speedup": base / float(np.median(t)),
         "max_abs_prob_diff": float(np.abs(out[name] - ref).max()),
         "argmax_agree": float((out[name].argmax(1) == ref.argmax(1)).mean())} for name, t in times.items()]}


def markdown(report: dict) -> str:
    from edgedino.bench.machine import describe

    cpu = describe()["cpu"]
    lines = [f"- command: `{report['command']}`; OPENBLAS_NUM_THREADS={report['openblas_threads']}",
             f"- machine: {cpu['model']}, {cpu['cores']} cores, flags {' '.join(cpu.get('flags', []))}; load average "
             f"(1 min) {report['load'][0]:.1f} at start, {report['load'][1]:.1f} at end", "",
             "| short side | grid | row | median ms | speedup | max abs prob diff | argmax agree |",
             "|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        for r in size["rows"]:
            lines.append(f"| {size['short_side']} | {size['grid'][0]}x{size['grid'][1]} | {r['row']} | "
                         f"{r['median_ms']:.1f} | {r['speedup']:.2f}x | {r['max_abs_prob_diff']:.1e} | "
                         f"{r['argmax_agree']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    sizes = []
    for side in GRIDS:
        sizes.append(measure(side, args.rounds, rng))
        print(json.dumps(sizes[-1]), file=sys.stderr, flush=True)
    report = {"command": "python " + " ".join([f"benchmarks/{Path(__file__).name}", *sys.argv[1:]]),
              "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"), "rounds": args.rounds,
              "load": [load0, os.getloadavg()[0]], "sizes": sizes}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
