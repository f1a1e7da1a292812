"""`edgedino` command line: one module per command under edgedino.cli, each with register() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgedino.errors import EdgeDinoError
from edgedino.flags import store_once
from edgedino.version import __version__

COMMANDS = ("models", "info", "features", "export", "verify", "compare", "embed", "benchmark", "head", "pretrain",
            "distill", "eval")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgedino",
        description="DINOv3-style vision backbones from training to the edge.",
        epilog="Run 'edgedino COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"edgedino {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"edgedino.cli.{name}").register(sub)
    return store_once(parser)


# The extra that installs what each command imports beyond the runtime (torch, onnx, matplotlib, ...).
EXTRAS = {"benchmark": "bench", "pretrain": "train", "distill": "train", "head": "train"}


def main(argv: list[str] | None = None) -> int:
    """Parse (flags, their old spellings and key=value alike) and run the command; an unknown flag is answered with
    the command's own usage, a bad input with one line and exit status 2."""
    from edgedino.flags import expand_key_values, subparser_for, warn_deprecated

    parser = build_parser()
    argv = expand_key_values(parser, list(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        subparser_for(parser, argv).error(f"unrecognized arguments: {' '.join(unknown)}")
    warn_deprecated(subparser_for(parser, argv), argv, f"edgedino {args.command}")
    try:
        return args.run(args) or 0
    except EdgeDinoError as e:
        print(f"edgedino {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except ModuleNotFoundError as e:
        if (e.name or "edgedino").split(".")[0] == "edgedino":
            raise
        print(f"edgedino {args.command}: error: {e.name.split('.')[0]} is not installed: pip install "
              f"'edgedino[{EXTRAS.get(args.command, 'export')}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgedino {args.command}: interrupted", file=sys.stderr)
        return 130
