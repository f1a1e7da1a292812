"""Options and helpers shared by the commands: which model, which weights, what size."""

from __future__ import annotations

import argparse
import sys
import textwrap

from edgedino.license import RANDOM_NOTICE


def add_command(sub, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with real examples."""
    return sub.add_parser(
        name, help=help, description=description,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="preset name (vits16, vits16plus, vitb16, vitl16, vith16plus, convnext_tiny, "
                   "convnext_small, convnext_base, convnext_large); inferred from --weights when omitted; random "
                   "weights when given without --weights")
    p.add_argument("--weights", help="official DINOv3 .pth, official training checkpoint, Hugging Face folder "
                   "or .safetensors, an edgedino checkpoint, or `demo` (the shipped demo model, a ViT/8 trained on "
                   "a few hundred images, not DINOv3)")


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
