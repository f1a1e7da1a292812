"""One vocabulary of flags: every command and app against the table in edgedino.flags, old spellings read with a
note, Ultralytics' `format` and key=value forms, a model file in --model, the command's own usage for an unknown
flag, and -V."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edgedino.flags import FLAGS, command_parsers, expand_key_values, markdown_table

HELP_ONLY = {"-h", "--help", "-V", "--version"}


def options(parser):
    return [a for a in parser._actions if a.option_strings and not HELP_ONLY & set(a.option_strings)]


def test_every_command_speaks_the_table():
    parsers = command_parsers()
    assert {"edgedino export", "edgedino benchmark", "edgedino head train", "edgedino-track"} <= set(parsers)
    old_or_alias = {s for f in FLAGS.values() for s in (*f.aliases, *f.deprecated)}
    used = Counter()
    for command, parser in parsers.items():
        for action in options(parser):
            name = action.option_strings[0]
            used[name] += 1
            assert name not in old_or_alias, f"{command}: {name} is another flag's other spelling"
            if name in FLAGS:
                flag = FLAGS[name]
                extra = tuple(action.option_strings[len(flag.spellings):])
                assert tuple(action.option_strings[:len(flag.spellings)]) == flag.spellings, (command, name)
                assert extra == tuple(action.deprecated_spellings[len(flag.deprecated):]), (command, name)
                assert action.help.startswith(flag.meaning), f"{command} {name}: {action.help!r}"
    shared = {name for name, n in used.items() if n > 1}
    assert shared <= set(FLAGS), f"flags used by several commands but missing from the table: {shared - set(FLAGS)}"
    assert all(used[name] for name in FLAGS), [name for name in FLAGS if not used[name]]
    table = markdown_table()
    assert all(f"| `{name}` |" in table for name in FLAGS) and "--out (features)" in table


@pytest.mark.parametrize("argv, old, new", [
    (["features", "/no/such.jpg", "--model", "vit_test", "--out", "p.png"], "--out", "--save"),
    (["verify", "/no/such.onnx", "--images", "photos/"], "--images", "--source"),
])
def test_old_spellings_still_work_with_a_note(argv, old, new, capsys):
    from edgedino.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"edgedino {argv[0]}: note: {old} is now {new} (the old spelling goes in the next release)"
    assert len(err) == 2 and "not found" in err[1]


def test_old_spellings_parse_to_the_new_names():
    from edgedino.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["benchmark", "--targets", "torch"]).target == "torch"
    assert parser.parse_args(["head", "train", "--task", "classify", "--data", "d", "--head", "mlp",
                              "--out", "h.pth"]).head_type == "mlp"
    assert parser.parse_args(["head", "train", "--task", "classify", "--data", "d", "--out", "h.pth"]).save == "h.pth"


def test_ultralytics_key_value_and_format():
    from edgedino.cli import build_parser

    parser = build_parser()
    argv = ["export", "model=vit_test", "format=onnx", "imgsz=64", "int8=True", "dynamic=True", "--option",
            "minimum_deployment_target=iOS18", "no_verify=false"]
    args = parser.parse_args(expand_key_values(parser, argv))
    assert (args.model, args.target, args.imgsz, args.precision) == ("vit_test", "onnx", "64", "int8")
    assert args.dynamic and not args.no_verify and args.option == ["minimum_deployment_target=iOS18"]
    assert parser.parse_args(["export", "--format", "openvino"]).target == "openvino"
    # a key that names no flag of the command stays as it is (pretrain's config overrides)
    assert expand_key_values(parser, ["pretrain", "optim.lr=1e-3", "init=run/c.pth"]) == [
        "pretrain", "optim.lr=1e-3", "init=run/c.pth"]


def test_model_takes_a_preset_or_a_file(tmp_path):
    from edgedino.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["info", "--model", "runs/tiny/backbone.pth"])
    assert (args.model, args.weights) == (None, "runs/tiny/backbone.pth")
    args = parser.parse_args(["info", "--model", "vits16"])
    assert (args.model, args.weights) == ("vits16", None)
    run = subprocess.run([sys.executable, "-m", "edgedino", "info", "--weights", "a.pth", "--model", "b.pth"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "give the model file once" in run.stderr


@pytest.mark.parametrize("argv, usage", [
    (["verify", "x.onnx", "--bogus"], "usage: edgedino verify"),
    (["head", "samples", "--task", "segment", "--out", "d", "--bogus"], "usage: edgedino head samples"),
])
def test_unknown_flag_shows_the_commands_usage(argv, usage):
    run = subprocess.run([sys.executable, "-m", "edgedino", *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith(usage), run.stderr
    assert "unrecognized arguments: --bogus" in run.stderr


def test_short_version_flag():
    run = subprocess.run([sys.executable, "-m", "edgedino", "-V"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("edgedino ")


def test_the_readme_shows_the_flag_table_as_it_is():
    """The README's flag table is `markdown_table()` verbatim: a flag added to the table shows up for users."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table().strip() in readme
