"""Export stopped part-way: Ctrl-C (a real SIGINT, and Ctrl-C wrapped in torch.onnx's own error) and a full disk.
Each ends at once with a clear word, starts no other target, and leaves nothing half-written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest


def test_ctrl_c_stops_export_at_once(tmp_path):
    """SIGINT while torch.onnx exports (it wraps KeyboardInterrupt in TorchExportError): exit 130, no other target
    starts, nothing half-written, no output folder left."""
    from edgedino import create_model, save_backbone

    save_backbone(create_model("vit_test").reset_parameters(seed=1), tmp_path / "w.pt", "edgedino")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edgedino", "export", "--weights", str(tmp_path / "w.pt"), "--target",
           "onnx,openvino,tflite", "--out", str(out)]
    interrupted_onnx = 0
    for delay in (0.3, 0.9, 1.5):  # into torch.export's tracing, where the wrapping happens
        # SIGINT as a terminal gives it, even where the test runner itself ignores it (nohup, some CI runners)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        seen = ""
        while "[1/3] onnx fp32: exporting" not in seen:
            line = proc.stderr.readline()
            assert line, f"export ended before it started: {seen}"
            seen += line
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        rest = proc.communicate(timeout=120)[1]
        waited = time.monotonic() - sent
        assert proc.returncode == 130, seen + rest
        assert "failed" not in rest and "Traceback" not in rest, rest
        assert "edgedino export: interrupted" in rest
        assert waited < 60, f"exit {waited:.0f} s after SIGINT"
        assert not out.exists(), sorted(p.name for p in out.iterdir())
        if ".onnx (" not in rest:  # the signal came while onnx was still exporting: nothing after it may start
            interrupted_onnx += 1
            assert "[2/3]" not in rest, rest
    assert interrupted_onnx, "every signal came after the onnx export had finished: the test saw no interruption"


@pytest.mark.parametrize("library", ["swallows it", "turns it into its own error"])
def test_an_interrupt_a_library_swallows_still_stops_the_caller(library):
    """torch.onnx wraps Ctrl-C and retries another capture strategy: the interrupt must not vanish."""
    from edgedino.errors import sticky_interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a command started from a terminal has it
    try:
        with pytest.raises(KeyboardInterrupt), sticky_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                if library != "swallows it":
                    raise RuntimeError("export failed") from None
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, before)


def test_full_disk_says_so(tmp_path):
    """An export onto a full filesystem (a 256 KB tmpfs in a private mount namespace): each artifact's failure
    names the full disk, not 'basic_ios::clear: iostream error'; nothing is left on it."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    from edgedino import create_model, save_backbone

    save_backbone(create_model("vit_test").reset_parameters(seed=1), tmp_path / "w.pt", "edgedino")
    disk = tmp_path / "disk"
    disk.mkdir()
    export = (f"{sys.executable} -m edgedino export --weights {tmp_path / 'w.pt'} --imgsz 64 --target openvino,onnx "
              f"--out {disk}/out; echo rc=$?; ls -A {disk}")
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                          f"mount -t tmpfs -o size=256k tmpfs {disk} && {export}"],
                         capture_output=True, text=True, timeout=600)
    if "mount" in run.stderr and "rc=" not in run.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()[:200]}")
    assert "rc=1" in run.stdout, run.stdout + run.stderr
    failures = [line for line in run.stderr.splitlines() if "failed:" in line]
    assert len(failures) == 2 and all("no space left on device" in line for line in failures), run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.strip().endswith("rc=1"), "the full disk holds nothing afterwards: " + run.stdout


def test_ctrl_c_wrapped_by_torch_onnx_stops_every_target(tmp_path, monkeypatch):
    """Ctrl-C inside torch.export's tracing reaches export() wrapped: torch.onnx catches the tracer's error and
    raises TorchExportError from it. Here the tracer's error carries a KeyboardInterrupt, deterministically:
    export must raise KeyboardInterrupt, start no other target, and leave nothing behind."""
    import torch

    from edgedino import create_model, save_backbone
    from edgedino.export import export
    from edgedino.export.module import ExportModule

    traced = ExportModule.forward

    def forward(self, x):
        if torch.compiler.is_exporting():
            raise RuntimeError("error while tracing") from KeyboardInterrupt()
        return traced(self, x)

    monkeypatch.setattr(ExportModule, "forward", forward)
    save_backbone(create_model("vit_test").reset_parameters(seed=1), tmp_path / "w.pt", "edgedino")
    lines = []
    with pytest.raises(KeyboardInterrupt):
        export(targets=["onnx", "openvino"], weights=str(tmp_path / "w.pt"), imgsz=64, out=tmp_path / "out",
               log=lines.append)
    assert lines == ["[1/2] onnx fp32: exporting"]
    assert not (tmp_path / "out").exists()
