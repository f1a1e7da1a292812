"""`edgedino verify`: an existing artifact against PyTorch, from the model and weights its metadata records."""

from __future__ import annotations

from edgedino.atomic import check_output
from edgedino.cli.common import add_command
from edgedino.flags import add_flag


def register(sub) -> None:
    p = add_command(
        sub, "verify", help="check an exported artifact against PyTorch (any target; for CI)",
        description="Run an artifact (.onnx, .xml, .mlpackage, .tflite) in the runtimes this machine has and "
                    "compare each output with PyTorch fp32 on real images, using the model and weights recorded "
                    "in its metadata. The weights file is found by its recorded name next to the artifact or in "
                    "the current folder, or given with --weights; its SHA-256 must match. An artifact with a task "
                    "head has its logits compared too, with the head file found or given (--head) the same way. "
                    "Core ML packages run "
                    "in edgedino's reference interpreter of the ML program (and in Core ML on macOS). Exit 0: "
                    "every runtime meets the precision's threshold; 1: one does not; 2: it cannot be verified.",
        examples="""
            edgedino verify exports/vits16_224_int8.mlpackage --source my_images/
            edgedino verify exports/vits16_224_fp16.onnx --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth
            edgedino verify exports/convnext_tiny_224_int8.tflite --source street.mp4 --json verify.json
            edgedino verify exports/vits16_classify_224_int8.onnx --head digits_head.pth
        """,
    )
    p.add_argument("artifact", help="the exported file (.onnx, .xml, .tflite) or package folder (.mlpackage)")
    add_flag(p, "--source", "an image folder or video to compare on, 8 images (default: held-out photos shipped "
             "with edgedino, which the default calibration does not see)")
    add_flag(p, "--weights", "the file the artifact was exported from (default: its recorded name, next to the "
             "artifact or in the current folder)")
    add_flag(p, "--head", "the one an artifact with a task head was exported with (default: its recorded name, next "
             "to the artifact or in the current folder)")
    add_flag(p, "--json")
    p.set_defaults(run=run)


def run(args) -> int:
    from edgedino.cli.export import print_table
    from edgedino.export.reverify import verify_existing

    if args.json:
        check_output(args.json, inputs=[args.artifact, args.weights, args.head, args.source])
    report = verify_existing(args.artifact, args.source, args.weights, args.head)
    print_table(report, export_times=False)
    if args.json:
        from edgedino.schemas import write_json

        write_json(args.json, "verify", report.to_dict())
    return 0 if report.artifacts[0].status == "ok" else 1
