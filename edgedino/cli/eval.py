"""`edgedino eval knn|linear`: how good frozen features are on a labelled folder (one subfolder per class)."""

from __future__ import annotations

import sys
import time

from edgedino.cli.common import add_command, add_model_args
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag


def register(sub) -> None:
    p = add_command(
        sub, "eval", help="k-NN / linear-probe accuracy of frozen features on a labelled image folder",
        description="Embed a labelled folder (one subfolder of images per class; train/ and test/ (or val/) "
                    "subfolders if present, else a seeded stratified split) with any backbone or exported "
                    "artifact, then score the frozen features. knn: weighted k-NN on the CLS token, k = 10 and "
                    "20, temperature 0.07 (the DINO protocol). linear: a softmax-regression probe on "
                    "[CLS; mean patch token], weight decay picked on held-out training images.",
        examples="""
            edgedino eval knn --data digits/ --weights runs/tiny/backbone.pth --imgsz 64
            edgedino eval linear --data digits/ --weights vits16_int8.xml
            edgedino eval knn --data my_classes/ --model vits16 --json knn.json   # random-init baseline
        """,
    )
    p.add_argument("protocol", choices=("knn", "linear"), help="knn or linear")
    add_flag(p, "--data", "a folder with one subfolder of images per class", required=True)
    add_model_args(p)
    add_flag(p, "--imgsz", "N: images are resized to N x N (default 224)", type=int, default=224)
    p.add_argument("--test-fraction", type=float, default=0.3, help="held out per class without train/test "
                   "subfolders (default 0.3)")
    add_flag(p, "--threads", "default: the runtime's choice", type=int)
    add_flag(p, "--json")
    p.set_defaults(run=run)


def evaluate(protocol: str, data: str, weights: str | None, model: str | None, imgsz: int,
             test_fraction: float = 0.3, threads: int | None = None) -> dict:
    """The protocol's accuracy for one backbone/artifact on one labelled folder, as a JSON-friendly dict."""
    from edgedino.eval.dataset import load_split
    from edgedino.eval.embed import embed, open_model
    from edgedino.eval.knn import knn_accuracy
    from edgedino.eval.linear import linear_accuracy, probe_features
    from edgedino.progress import ProgressLine

    split = load_split(data, test_fraction)
    net = open_model(weights, model, threads)
    t0, bar = time.perf_counter(), ProgressLine(len(split.train) + len(split.test))
    tr = embed(net, split.train, imgsz, done=bar.update)
    te = embed(net, split.test, imgsz, done=lambda n: bar.update(len(split.train) + n))
    result = {"protocol": protocol, "data": str(data), "weights": weights, "model": model, "imgsz": imgsz,
              "classes": len(split.classes), "train": len(split.train), "test": len(split.test),
              "embed_s": round(time.perf_counter() - t0, 2)}
    n = len(split.classes)
    if protocol == "knn":
        acc = knn_accuracy(tr.cls, split.train_labels, te.cls, split.test_labels, n)
        result.update({f"top1_k{k}": a for k, a in acc.items()})
    else:
        top1, wd = linear_accuracy(probe_features(tr.cls, tr.patch_mean), split.train_labels,
                                   probe_features(te.cls, te.patch_mean), split.test_labels, n)
        result.update({"top1": top1, "weight_decay": wd})
    return result


def run(args) -> int:
    if args.weights is None and args.model is None:
        raise EdgeDinoError("give --weights (a checkpoint or exported artifact) or --model (random-init preset)")
    if args.json:
        from edgedino.atomic import check_output

        check_output(args.json, inputs=[args.weights, args.data])
    if args.weights is None:
        print(f"note: {args.model} has random weights (a baseline, not a trained model)", file=sys.stderr)
    r = evaluate(args.protocol, args.data, args.weights, args.model, args.imgsz, args.test_fraction, args.threads)
    print(f"{'model':<40} {'classes':>7} {'train':>6} {'test':>6}  accuracy")
    scores = "  ".join(f"{k} {v:.1f}%" for k, v in r.items() if k.startswith("top1"))
    print(f"{str(args.weights or args.model):<40} {r['classes']:>7} {r['train']:>6} {r['test']:>6}  {scores}")
    if args.json:
        from edgedino.schemas import write_json

        write_json(args.json, "eval", r)
    return 0
