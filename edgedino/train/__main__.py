"""`torchrun --nproc_per_node N -m edgedino.train [distill] ...`: pretraining (or distillation), N processes."""

from __future__ import annotations

import argparse
import sys

from edgedino.errors import EdgeDinoError


def entry(prog: str, description: str, cli, run, summary, argv: list[str]) -> int:
    """Parse a training command's flags (`cli` is its edgedino.cli module), run it in every process, and have the
    process that exported the backbones print the summary."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    cli.add_arguments(p)
    args = p.parse_args(argv)
    try:
        result = run(cli.config_from_args(args), args.out, args.max_steps, args.resume)
    except EdgeDinoError as e:
        print(f"{prog.removeprefix('python -m ')}: error: {e}", file=sys.stderr)
        return e.exit_code
    if result.exported:
        print(summary(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["distill"]:  # torchrun ... -m edgedino.train distill ...
        from edgedino.cli import distill as cli
        from edgedino.train.distill import distill, summary

        return entry("python -m edgedino.train distill", "Distillation (torchrun entry).", cli, distill, summary,
                     argv[1:])
    from edgedino.cli import pretrain as cli
    from edgedino.train.pretrain import pretrain, summary

    return entry("python -m edgedino.train", "DINOv3 pretraining (torchrun entry).", cli, pretrain, summary, argv)


if __name__ == "__main__":
    sys.exit(main())
