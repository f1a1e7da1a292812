"""`edgedino` command line: one module per command under edgedino.cli, each with register() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgedino.errors import EdgeDinoError
from edgedino.version import __version__

COMMANDS = ("models", "info", "features", "export", "verify", "benchmark", "head", "pretrain", "distill", "eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgedino",
        description="DINOv3-style vision backbones from training to the edge.",
        epilog="Run 'edgedino COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"edgedino {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"edgedino.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except EdgeDinoError as e:
        print(f"edgedino {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"edgedino {args.command}: interrupted", file=sys.stderr)
        return 130
