"""`torchrun --nproc_per_node N -m edgedino.train [distill] ...`: pretraining (or distillation), N processes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgedino.cli.pretrain import add_arguments, config_from_args
from edgedino.errors import EdgeDinoError
from edgedino.train.pretrain import pretrain, summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["distill"]:  # torchrun ... -m edgedino.train distill ...
        from edgedino.cli.distill import main as distill_main

        return distill_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m edgedino.train", description="DINOv3 pretraining (torchrun entry).")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        result = pretrain(config_from_args(args), args.out, args.max_steps, args.resume)
    except EdgeDinoError as e:
        print(f"edgedino.train: error: {e}", file=sys.stderr)
        return 2
    if result.exported:
        print(summary(result, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
