"""Options and helpers shared by the commands: which model, which weights, what size."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from edgedino.flags import MODEL_FILE_SUFFIXES, add_flag, check_given, is_model_file
from edgedino.license import RANDOM_NOTICE


def add_command(sub, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with real examples."""
    return sub.add_parser(
        name, help=help, description=description,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


class ModelOrFile(argparse.Action):
    """--model takes a preset name or a model file; a file goes where --weights would put it."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value == Path(value).name and not value.endswith(MODEL_FILE_SUFFIXES) and Path(value).exists():
            from edgedino.models import list_models  # PyTorch: only for a name that is also a file here

            if value in list_models(True):
                parser.error(f"--model {value} is both a preset and a file here: give ./{value} for the file")
        if not is_model_file(value):
            check_given(self, parser, namespace, value, option_string)
            namespace.model = value
        elif getattr(namespace, "weights", None):
            parser.error(f"--model {value} and --weights {namespace.weights}: give the model file once")
        else:
            check_given(self, parser, namespace, value, option_string, dest="weights")
            namespace.weights = value


def add_model_args(p: argparse.ArgumentParser) -> None:
    add_flag(p, "--model", "vits16, vits16plus, vitb16, vitl16, vith16plus, convnext_tiny, convnext_small, "
             "convnext_base, convnext_large; inferred from --weights when omitted; random weights when given without "
             "--weights", action=ModelOrFile)
    add_flag(p, "--weights", "or `demo`: the shipped demo model (a ViT/8 trained on a few hundred images, not "
             "DINOv3), which is used when neither --model nor --weights is given")


def load_model(args: argparse.Namespace):
    """The backbone the flags ask for: the shipped demo model when neither --model nor --weights is given, random
    weights for a --model without --weights; a plain note on stderr for either."""
    import warnings

    from edgedino.checkpoints import RandomWeightsWarning, load_backbone
    from edgedino.demo import DEMO_NAME, DEMO_NOTICE, is_demo

    weights = DEMO_NAME if args.weights is None and args.model is None else args.weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        model = load_backbone(weights, args.model)
    if weights is None:
        print(f"note: {RANDOM_NOTICE}", file=sys.stderr)
    elif is_demo(weights):
        print(f"note: {DEMO_NOTICE}", file=sys.stderr)
    return model
