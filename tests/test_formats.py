"""The formats table is the one place a format is defined: every row has both modules, and a new row with its two
modules reaches `edgedino export --help`, the exporter, `runtime.load` and the benchmark with no other file
touched."""

import importlib
import os
import textwrap

import pytest

from edgedino.export import target as target_module
from edgedino.runtime.formats import FORMATS, Format, format_of


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_row_has_its_export_and_runtime_module(name):
    fmt = FORMATS[name]
    assert callable(importlib.import_module(fmt.runtime).load)
    importlib.import_module(fmt.exporter)
    target = target_module.all_targets()[name]
    assert (target.suffix, target.folder) == (fmt.suffix, fmt.folder)
    assert format_of(f"model{fmt.suffix}") is fmt


def test_suffixes_do_not_shadow_each_other():
    """format_of matches the end of a name: no suffix may end with another."""
    suffixes = [f.suffix for f in FORMATS.values()]
    assert not [(a, b) for a in suffixes for b in suffixes if a != b and a.endswith(b)]


EXPORTER = """
    from edgedino.export.onnx import OnnxTarget
    from edgedino.export.target import register


    @register
    class FakeTarget(OnnxTarget):
        name = "fake"
"""
RUNTIME = """
    from edgedino.runtime.onnx import OnnxRuntime


    class FakeRuntime(OnnxRuntime):
        kind = "fake-runtime"


    def load(path, threads=None):
        return FakeRuntime(path, threads)
"""


@pytest.fixture
def fake_format(tmp_path, monkeypatch):
    """A format 'fake' (.fakex files: ONNX inside, run by its own runtime class) added as one row."""
    package = tmp_path / "fakefmt"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "exporter.py").write_text(textwrap.dedent(EXPORTER))
    (package / "runtime.py").write_text(textwrap.dedent(RUNTIME))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("EDGEDINO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(target_module, "TARGETS", dict(target_module.TARGETS))
    monkeypatch.setitem(FORMATS, "fake", Format("fake", ".fakex", "fakefmt.runtime", "fakefmt.exporter"))
    return tmp_path


def test_a_new_row_reaches_help_export_runtime_and_benchmark(fake_format, capsys):
    from edgedino.bench.runner import run_suite
    from edgedino.bench.suite import Suite, check_suite
    from edgedino.cli import main
    from edgedino.export import export
    from edgedino.runtime import load

    with pytest.raises(SystemExit) as done:
        main(["export", "--help"])
    target_help = capsys.readouterr().out.split("\n  --target TARGET")[1].split("\n  --")[0]
    assert done.value.code == 0 and "tflite, fake or all" in " ".join(target_help.split())

    result = export("fake", model="vit_test", imgsz=64, out=fake_format / "out", log=lambda line: None)
    artifact = result.artifacts[0]
    assert artifact.status == "ok", artifact.message
    assert artifact.path.endswith("vit_test_64_fp32.fakex")
    assert load(artifact.path).kind == "fake-runtime"

    suite = check_suite(Suite(models=["vit_test"], targets=["fake"], precisions=["fp32"], imgsz=["64"],
                              threads=[1], warmup=1, iters=2))
    row = run_suite(suite, log=lambda line: None)["rows"][0]
    assert (row["target"], row["status"]) == ("fake", "measured"), row["reason"]
    assert row["parity_cos"] > 0.9999 and row["latency_ms"]["median"] > 0


def test_an_unknown_benchmark_target_is_named():
    from edgedino.bench.suite import Suite, check_suite
    from edgedino.errors import EdgeDinoError

    with pytest.raises(EdgeDinoError, match="unknown benchmark target 'onxx'; did you mean 'onnx'"):
        check_suite(Suite(targets=["torch", "onxx"]))
