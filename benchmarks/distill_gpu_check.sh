#!/usr/bin/env bash
# Distillation on one CUDA GPU (bf16 autocast): random ViT-B/16 teacher -> ViT-S/16 + ConvNeXt-T at 224 px, batch 64,
# on the shipped photos. Prints images/s and checks resume: 20 steps straight against 10 steps + 10 resumed.
#   PYTHONPATH=. benchmarks/distill_gpu_check.sh /tmp/distill_gpu
set -euo pipefail
out=${1:-/tmp/distill_gpu}
py=${PYTHON:-python3}
common=(--teacher vitb16 --student vits16 --student convnext_tiny --data edgedino/assets
        run.batch=64 run.total_steps=20 run.checkpoint_every=10 run.log_every=5 data.workers=8)
$py -m edgedino distill "${common[@]}" --out "$out/a"
$py -m edgedino distill "${common[@]}" --out "$out/b" --max-steps 10
$py -m edgedino distill "${common[@]}" --out "$out/b" --resume
$py - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
a, b = ([json.loads(x) for x in (out / r / "metrics.jsonl").read_text().splitlines()] for r in ("a", "b"))
keys = [k for k in a[0] if k == "loss" or "." in k]
diff = max(abs(ra[k] - rb[k]) for ra, rb in zip(a, b, strict=True) for k in keys)
print(f"resume: steps {len(a)} vs {len(b)}, max |loss difference| over {len(keys)} terms: {diff:.3g}")
ips = sorted(r["images_per_s"] for r in a[2:])
print(f"images/s (median of steps 2..19, teacher fwd + 2 students fwd/bwd): {ips[len(ips) // 2]:.1f}")
PY
