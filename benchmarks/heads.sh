#!/usr/bin/env bash
# Heads evidence on this machine: held-out accuracy / mIoU of heads on random-init backbones, export parity of
# backbone + head artifacts, and the live apps' FPS. Data: OpenCV's sample data (../shared/data or DATA=...).
# Usage: benchmarks/heads.sh [results folder]   (about 20 minutes on 2 busy cores)
set -euo pipefail
DATA=${DATA:-../shared/data}
RES=${1:-benchmarks/results/intel-xeon-2c/heads}
WORK=${WORK:-/tmp/edgedino-heads}
ED=${ED:-.venv/bin/edgedino}
PY=${PY:-.venv/bin/python}
mkdir -p "$RES" "$WORK"
[ -d "$WORK/digits" ] || $ED head samples --task classify --source "$DATA/digits.png" --count 100 \
    --out "$WORK/digits"
[ -d "$WORK/shapes" ] || $ED head samples --task segment --source "$DATA" --textures baboon,fruits --count 200 \
    --size 224 --out "$WORK/shapes"
train() {  # name, then the train flags
    local name=$1; shift
    $ED head train "$@" --cache "$WORK/cache" --out "$WORK/$name.pth" --report "$RES/$name" 2>"$WORK/$name.log" \
        | tee "$RES/$name.txt"
}
train digits_vits16_linear --task classify --data "$WORK/digits" --model vits16 --imgsz 64
train digits_vits16_mlp --task classify --data "$WORK/digits" --model vits16 --imgsz 64 --head mlp
train digits_convnext_tiny_linear --task classify --data "$WORK/digits" --model convnext_tiny --imgsz 64
train shapes_vits16_linear --task segment --data "$WORK/shapes" --model vits16 --imgsz 224
train shapes_vits16_mlp --task segment --data "$WORK/shapes" --model vits16 --imgsz 224 --head mlp
train shapes_convnext_tiny_mlp --task segment --data "$WORK/shapes" --model convnext_tiny --imgsz 224 --head mlp
for head in digits_vits16_linear shapes_vits16_mlp; do
    $ED export --head "$WORK/$head.pth" --target onnx,openvino,tflite,coreml --precision fp32,int8 \
        --calib "$DATA" --calib-size 16 --out "$WORK/exports" --json "$RES/export_$head.json" \
        2>"$WORK/export_$head.log" | tee "$RES/export_$head.txt" || echo "export of $head exited non-zero"
done
for art in vits16_classify_64_fp32.onnx vits16_classify_64_int8.xml vits16_classify_64_int8.tflite; do
    $PY apps/classify.py --model "$WORK/exports/$art" --source "$DATA/vtest.avi" --headless --max-frames 100 \
        --threads 2 --save "$WORK/classify_${art}.mp4" 2>&1 | tee "$RES/app_classify_${art}.txt"
done
for art in vits16_segment_224_fp32.onnx vits16_segment_224_int8.xml vits16_segment_224_int8.tflite; do
    $PY apps/segment.py --model "$WORK/exports/$art" --source "$DATA/vtest.avi" --headless --max-frames 100 \
        --threads 2 --save "$WORK/segment_${art}.mp4" 2>&1 | tee "$RES/app_segment_${art}.txt"
done
