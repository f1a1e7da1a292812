"""`edgedino compare A B`: two models (artifacts or checkpoints) against each other on real images, output by
output, with verify's cosine measures: is the int8 OpenVINO file as good as the fp32 ONNX one, did a re-export change
anything."""

from __future__ import annotations

import os
import sys

from edgedino.argtypes import at_least
from edgedino.cli.common import add_command
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag


def register(sub) -> None:
    p = add_command(
        sub, "compare", help="two artifacts (or checkpoints) against each other on images: cosine per output",
        description="Run A and B on the same images at the same input size and compare every output they share "
                    "(cls, patch_tokens, logits): mean and minimum cosine similarity over images and tokens, and the "
                    "largest absolute difference. A non-finite output is an error (exit 1).",
        examples="""
            edgedino compare exports/vits16_224_int8.xml exports/vits16_224_fp32.onnx
            edgedino compare vits16_224_fp16.tflite dinov3_vits16_pretrain_lvd1689m-08c60483.pth --source street.mp4
            edgedino compare a.onnx b.onnx --source my_images/ --json compare.json
        """,
    )
    p.add_argument("a", help="the model under test: an exported artifact or a checkpoint (.pth needs PyTorch)")
    p.add_argument("b", help="the model it is compared with (the reference)")
    add_flag(p, "--source", "an image folder or video (default: the sample photos shipped with edgedino)")
    add_flag(p, "--short-side", "for models that take any size (default: A's export size, else 224)",
             type=at_least(1))
    add_flag(p, "--threads", "default: the runtime's choice", type=at_least(1))
    add_flag(p, "--json")
    p.set_defaults(run=run)


def shared_size(a, b, frame_hw: tuple[int, int], short_side: int | None) -> tuple[int, int]:
    """The input size both models run at: A's (fixed, or fitted to the frames), which B must accept."""
    hw = a.input_hw(frame_hw, short_side)
    b_fixed = b.input_shape[1:3] if b.input_format == "uint8" else b.input_shape[2:4]
    if all(isinstance(d, int) and d > 0 for d in b_fixed) and tuple(b_fixed) != hw:
        raise EdgeDinoError(f"{a.path.name} runs at {hw[0]}x{hw[1]}, {b.path.name} at {b_fixed[0]}x{b_fixed[1]}: their "
                            "patch grids differ; compare models of one input size")
    return hw


def run(args) -> int:
    from edgedino.atomic import check_output
    from edgedino.export.parity import compare, run_each
    from edgedino.export.spec import VERIFY_IMAGES
    from edgedino.runtime import load
    from edgedino.runtime.frames import read_frames
    from edgedino.schemas import write_json

    if args.json:
        check_output(args.json, inputs=[args.a, args.b, args.source])
    a, b = load(args.a, args.threads), load(args.b, args.threads)
    if os.path.samefile(a.path, b.path):
        raise EdgeDinoError(f"{args.a} and {args.b} are the same file: compare two different models")
    frames = read_frames(args.source, VERIFY_IMAGES)
    hw = shared_size(a, b, frames[0].shape[:2], args.short_side)
    reference = run_each(b, b.preprocess(frames, hw))
    got = run_each(a, a.preprocess(frames[:1], hw))[0]
    shared = [name for name in reference[0] if name in got and reference[0][name].size]
    if not shared:
        raise EdgeDinoError(f"{a.path.name} and {b.path.name} share no output ({', '.join(got)} / "
                            f"{', '.join(reference[0])})")
    differ = [f"{n} {got[n].shape[1:]} / {reference[0][n].shape[1:]}" for n in shared
              if got[n].shape != reference[0][n].shape]
    if differ:
        raise EdgeDinoError(f"{a.path.name} and {b.path.name} give outputs of other shapes ({'; '.join(differ)}): "
                            "compare models of one architecture")
    parity = compare(a, a.preprocess(frames, hw), [{k: r[k] for k in shared} for r in reference])
    print(f"{a.path.name} ({a.kind}) against {b.path.name} ({b.kind}), {len(frames)} images at {hw[0]}x{hw[1]}")
    print(f"{'output':<14}{'cos mean':>10}{'cos min':>10}{'max |diff|':>12}")
    for p in parity:
        print(f"{p.output:<14}{p.cosine_mean:>10.5f}{p.cosine_min:>10.4f}{p.max_abs:>12.4g}")
    bad = [f"{which} {p.output}" for p in parity for which, ok in (("A", p.finite), ("B", p.reference_finite))
           if not ok]
    if bad:
        print(f"edgedino compare: error: non-finite values (NaN or inf) in {', '.join(bad)}", file=sys.stderr)
        return 1
    if args.json:
        write_json(args.json, "compare", {"a": str(args.a), "b": str(args.b), "images": len(frames),
                                          "imgsz": list(hw), "parity": [p.to_dict() for p in parity]})
    return 0
