#!/usr/bin/env bash
# FSDP2 on the CUDA GPUs of one machine (torchrun, one process per GPU; bf16 parameters, fp32 reductions):
#  1. ViT-S/16 with the full DINOv3 recipe (heads of 262,144 / 98,304 prototypes, 256/112 crops), DDP against
#     FSDP2 + activation checkpointing: images/s and peak GPU memory; then FSDP2 20 steps straight against
#     10 steps + 10 resumed from the sharded checkpoint (checkpoint.dcp).
#  2. Distillation of a ViT-S/16 from a random ViT-L/16 and a ViT-H+/16 teacher at 256 px: the teacher sharded
#     (FSDP2) or held whole in bf16 (DDP), no gradients: images/s and peak memory.
#   PYTHONPATH=. benchmarks/fsdp_gpu_check.sh /tmp/fsdp_gpu          (NGPU=8 to use 8 GPUs; default: all)
set -euo pipefail
out=${1:-/tmp/fsdp_gpu}
py=${PYTHON:-python3}
ngpu=${NGPU:-$($py -c "import torch; print(torch.cuda.device_count())")}
run() { $py -m torch.distributed.run --standalone --nproc_per_node "$ngpu" -m edgedino.train "$@"; }
per=32  # images per GPU
pre=(--preset vits16 --data edgedino/assets run.batch=$((per * ngpu)) run.total_steps=20 run.checkpoint_every=10
     run.log_every=5 data.workers=6 optim.warmup=2)
run "${pre[@]}" --out "$out/ddp"
run "${pre[@]}" --out "$out/fsdp" run.parallel=fsdp run.activation_checkpointing=true
run "${pre[@]}" --out "$out/cut" run.parallel=fsdp run.activation_checkpointing=true --max-steps 10
run "${pre[@]}" --out "$out/cut" run.parallel=fsdp run.activation_checkpointing=true --resume
for teacher in vitl16 vith16plus; do
  dis=(distill --teacher "$teacher" --student vits16 --data edgedino/assets run.batch=$((per * ngpu))
       run.total_steps=10 run.checkpoint_every=10 run.log_every=5 data.workers=6)
  run "${dis[@]}" --out "$out/distill_${teacher}_bf16"
  run "${dis[@]}" run.parallel=fsdp --out "$out/distill_${teacher}_fsdp"
done
$py - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def rows(name):
    return [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
def line(name):
    r = rows(name)
    ips = sorted(x["images_per_s"] for x in r[2:])
    print(f"{name:28s} images/s {ips[len(ips) // 2]:8.1f}   peak GPU memory {max(x['gpu_memory_gb'] for x in r):6.2f} GB")
for name in ("ddp", "fsdp", "distill_vitl16_bf16", "distill_vitl16_fsdp", "distill_vith16plus_bf16",
             "distill_vith16plus_fsdp"):
    line(name)
a, b = rows("fsdp"), rows("cut")
keys = ("loss", "dino", "ibot", "koleo")
diff = max(abs(x[k] - y[k]) for x, y in zip(a, b, strict=True) for k in keys)
print(f"FSDP resume from shards: {len(a)} vs {len(b)} steps, max |loss difference| {diff:.3g} (expect ~1e-6 or 0)")
PY
