"""Windows and macOS: the benchmark worker without `resource`, ru_maxrss units, a load average that may not exist,
and the TFLite target's plain "not on Windows"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_worker_imports_and_reports_without_resource():
    """Windows has no `resource` module: the worker still imports, and peak memory is unknown (None), not a crash."""
    code = ("import sys; sys.modules['resource'] = None\n"
            "import edgedino.bench.worker as w\n"
            "w.open = lambda *a, **k: (_ for _ in ()).throw(OSError('no /proc'))\n"
            "print(w.peak_rss_mb())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "None", run.stderr


def test_maxrss_units_per_platform():
    from edgedino.bench.worker import maxrss_mb, peak_rss_mb

    assert maxrss_mb(300 * 2**20, "darwin") == 300  # bytes on macOS
    assert maxrss_mb(300 * 1024, "linux") == 300  # KiB on Linux
    assert 1 < peak_rss_mb() < 1e6


def test_load_average_where_the_system_keeps_none(monkeypatch):
    from edgedino.bench import machine
    from edgedino.bench.load import load_line

    assert len(machine.load_average()) == 3
    monkeypatch.delattr(os, "getloadavg")
    assert machine.load_average() is None
    assert load_line({"start": None, "end": None}) == "load average: not kept on this system"
    assert load_line({"start": [0.5, 0, 0], "end": [1.25, 0, 0]}).endswith("0.5 at start, 1.2 at end")


def test_tflite_is_plainly_not_on_windows(monkeypatch):
    from edgedino.export.target import get_target

    assert get_target("tflite").available() is None
    monkeypatch.setattr(sys, "platform", "win32")
    assert get_target("tflite").available().startswith("the tflite target is not on Windows")
    assert get_target("onnx").available() is None
    pins = [line.strip() for line in (ROOT / "pyproject.toml").read_text().splitlines() if "litert-torch" in line]
    assert pins and all("sys_platform != 'win32'" in line for line in pins)
