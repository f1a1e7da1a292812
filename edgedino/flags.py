"""The command line's vocabulary: one meaning per flag name across every command and app, the spellings each flag
also takes (Ultralytics' `format`; old names kept for one release with a note), and the `key=value` form. Every
command adds its shared flags through `add_flag`, so the table below is what the parsers (and the README) say. A
setting given twice with different values (under two spellings, or as a flag and a key=value) or given empty is a
usage error (StoreOnce)."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Flag:
    """A flag's name, what it always means (the start of its help), and its other spellings."""

    name: str
    meaning: str
    aliases: tuple[str, ...] = ()  # other spellings that stay (Ultralytics' names)
    deprecated: tuple[str, ...] = ()  # old spellings: still read for one release, with a note on stderr

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.deprecated)


FLAGS = {f.name: f for f in (
    Flag("--model", "the model: a preset name (edgedino models) or a model file (checkpoint or exported artifact)"),
    Flag("--weights", "weights for the preset: official DINOv3 .pth, Hugging Face folder or .safetensors, or an "
                      "edgedino checkpoint"),
    Flag("--target", "export target(s)", aliases=("--format",), deprecated=("--targets",)),
    Flag("--precision", "precision(s) of the exported artifacts"),
    Flag("--imgsz", "the model's input size in pixels, N or HxW"),
    Flag("--short-side", "the short side frames are resized to before the backbone"),
    Flag("--protocol", "the tracking protocol: edgedino (default, faster) or dinov3 (DINOv3's notebook op for op, "
                       "the one its paper's J&F is measured with)"),
    Flag("--source", "the frames or images to run on", deprecated=("--images",)),
    Flag("--data", "the dataset to train or evaluate on"),
    Flag("--calib", "images for int8 calibration and parity: a folder or a video"),
    Flag("--head", "a head file from 'edgedino head train'"),
    Flag("--head-type", "the head's architecture"),
    Flag("--out", "output folder"),
    Flag("--save", "output file"),
    Flag("--json", "also write the result as JSON to this file (the apps: one JSON line per frame)"),
    Flag("--threads", "runtime threads"),
    Flag("--batch", "batch size"),
    Flag("--task", "the head's task"),
    Flag("--config", "a YAML config file"),
    Flag("--preset", "a built-in training configuration"),
    Flag("--max-steps", "stop after this many steps, at least 1"),
    Flag("--resume", "continue the run in --out exactly where it stopped"),
    Flag("--headless", "no window (devices without a screen)"),
    Flag("--max-frames", "stop after this many frames"),
    Flag("--timeout", "seconds without a frame before the source counts as stalled"),
    Flag("--retries", "times a failed or stalled source is reopened before giving up"),
)}
# Ultralytics' switches in the key=value form: `int8=True` is --precision int8, `half=True` --precision fp16.
SWITCHES = {"int8": ("--precision", "int8"), "half": ("--precision", "fp16")}
KEY_VALUE = re.compile(r"([a-z][a-z0-9_]*)=(.*)")


def add_flag(p, name: str, detail: str = "", old: tuple[str, ...] = (), **kwargs) -> argparse.Action:
    """Add a flag of the table with all its spellings, and `old`: this command's former name for it (read, with a
    note, for one release). Its help is the table's meaning, then `detail`."""
    flag = FLAGS[name]
    kwargs.setdefault("dest", name.lstrip("-").replace("-", "_"))
    action = p.add_argument(*flag.spellings, *old, help=flag.meaning + (f"; {detail}" if detail else ""), **kwargs)
    action.deprecated_spellings = (*flag.deprecated, *old)
    return action


TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def check_given(action: argparse.Action, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value,
                option_string: str | None, dest: str | None = None) -> None:
    """A one-value flag's value as the user gave it: an empty one, or the flag given again (under any of its
    spellings) with another value, is a usage error, never a silent default or "the last one wins". `dest`: the
    setting it fills when that is not the flag's own (a model file in --model is --weights)."""
    name = option_string or f"argument {action.metavar or action.dest}"
    if isinstance(value, str) and not value.strip():
        parser.error(f"{name} is empty: give it a value")
    given = namespace.__dict__.setdefault("_given", {})
    first_name, first = given.setdefault(dest or action.dest, (name, value))
    if first != value:
        parser.error(f"{first_name} {first} and {name} {value}: the same setting twice with different values; "
                     "give it once")


class StoreOnce(argparse._StoreAction):
    """argparse's store, checked by check_given."""

    def __call__(self, parser, namespace, values, option_string=None):
        check_given(self, parser, namespace, values, option_string)
        super().__call__(parser, namespace, values, option_string)


def store_once(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make every store flag of `parser` and its subcommands a StoreOnce (repeatable ones such as --box append, and
    stay repeatable)."""
    for action in parser._actions:
        if type(action) is argparse._StoreAction:
            action.__class__ = StoreOnce
        elif isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                store_once(sub)
    return parser


def warn_deprecated(parser: argparse.ArgumentParser, argv: list[str], prog: str) -> None:
    """A one-line note on stderr for each old spelling used."""
    options = parser._option_string_actions
    for token in argv:
        name = token.split("=")[0]
        action = options.get(name)
        if action is not None and name in getattr(action, "deprecated_spellings", ()):
            print(f"{prog}: note: {name} is now {action.option_strings[0]} (the old spelling goes in the next "
                  "release)", file=sys.stderr)


def subparser_for(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command parser the arguments reach: `edgedino head train ...` -> the parser of `head train`."""
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs and token in subs[0].choices:
            parser = subs[0].choices[token]
    return parser


def expand_key_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`model=vits16 format=onnx imgsz=224 int8=True` as the flags they name (`--model vits16 ...`); a token is left
    as it is when it names no flag of the command, or when it is the value of the flag before it."""
    options = subparser_for(parser, argv)._option_string_actions
    out: list[str] = []
    for token in argv:
        m = KEY_VALUE.fullmatch(token)
        before = options.get(out[-1]) if out else None
        if not m or (before is not None and before.nargs != 0):
            out.append(token)
            continue
        key, value = m[1], m[2]
        flag = "--" + key.replace("_", "-")
        switch = key in SWITCHES or (flag in options and options[flag].nargs == 0)
        if switch and value.lower() not in TRUE + FALSE:
            subparser_for(parser, argv).error(f"{token}: {key} is a switch: give {key}=True or {key}=False")
        if key in SWITCHES:
            out += list(SWITCHES[key]) if value.lower() in TRUE else []
        elif switch:
            out += [flag] if value.lower() in TRUE else []
        elif flag in options:
            out += [flag, value]
        else:
            out.append(token)
    return out


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by name ('edgedino export', 'edgedino head train', 'edgedino-track', ...)."""
    import importlib

    from edgedino.cli import build_parser

    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[name] = parser
        for sub in subs:
            for child, p in sub.choices.items():
                walk(p, f"{name} {child}")

    walk(build_parser(), "edgedino")
    for app in ("track", "features", "classify", "segment"):
        found[f"edgedino-{app}"] = importlib.import_module(f"edgedino.apps.{app}").build_parser()
    return found


def markdown_table() -> str:
    """The flag table for the README: each flag, what it means, its other spellings and the commands that take it."""
    users: dict[str, list[str]] = {name: [] for name in FLAGS}
    renamed: dict[str, list[str]] = {name: [] for name in FLAGS}
    for command, parser in command_parsers().items():
        for action in parser._actions:
            if action.option_strings and action.option_strings[0] in FLAGS:
                name = action.option_strings[0]
                users[name].append(command.removeprefix("edgedino "))
                renamed[name] += [f"{o} ({command.removeprefix('edgedino ')})" for o in action.option_strings
                                  if o not in FLAGS[name].spellings]
    rows = ["| flag | means | also | old spelling (one more release) | commands |", "|---|---|---|---|---|"]
    for name, flag in FLAGS.items():
        old = [*flag.deprecated, *dict.fromkeys(renamed[name])]
        rows.append(f"| `{name}` | {flag.meaning} | {', '.join(flag.aliases)} | {', '.join(old)} | "
                    f"{', '.join(users[name])} |")
    return "\n".join(rows)


MODEL_FILE_SUFFIXES = (".pth", ".pt", ".safetensors", ".onnx", ".xml", ".tflite", ".mlpackage")


def is_model_file(value: str) -> bool:
    """Whether a --model value (or edgedino.export's first argument) names a file, folder, Hub id or link rather
    than a preset."""
    return "/" in value or "\\" in value or value.endswith(MODEL_FILE_SUFFIXES) or Path(value).exists()
