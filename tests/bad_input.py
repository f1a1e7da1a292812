"""The bad-input table's helper: run one hostile command line as a user would and check what they get.

A Case is a command (edgedino's arguments, or an app script and its arguments) with an optional setup that
writes files into the case's own folder. `check(case, folder)` runs it in a fresh process and asserts: the exit
code; for exit 2 exactly one 'error:' line on stderr, the last, matching the message; otherwise the message somewhere in
the output; no traceback; and nothing in the case's folder created, changed or deleted (no half-written output,
no empty output folder, no user file lost). Use it from any test file:

    from bad_input import Case, check

    @pytest.mark.parametrize("case", [Case("my-case", ["verify", "{dir}/x.onnx"], code=2, message="...")], ids=str)
    def test_my_bad_inputs(case, tmp_path):
        check(case, tmp_path)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    id: str
    argv: list[str]  # edgedino arguments, or ["apps/<app>.py", ...]; "{dir}" is the case's folder
    setup: Callable[[Path], None] | None = None  # writes the case's files into its folder
    code: int = 2
    message: str = ""  # regex: the one error line (exit 2), or found in stdout+stderr (other codes)
    timeout: float = 600
    env: dict = field(default_factory=dict)
    keeps: str | None = None  # regex of paths (relative to the folder) the command may leave: a kept artifact

    def __str__(self) -> str:
        return self.id


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under `folder`: a file with its size and modification time, a folder or link by its kind."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            regular = name in files and not path.is_symlink()
            found[str(path.relative_to(folder))] = (st.st_mode >> 12, *((st.st_size, st.st_mtime_ns) if regular
                                                                         else ()))
    return found


def command(case: Case, folder: Path) -> list[str]:
    argv = [a.replace("{dir}", str(folder)) for a in case.argv]
    if argv[0].startswith("apps/"):
        return [sys.executable, str(ROOT / argv[0]), *argv[1:]]
    return [sys.executable, "-m", "edgedino", *argv]


def check(case: Case, folder: Path) -> subprocess.CompletedProcess:
    """Run the case in `folder` (its working directory) and assert everything the module docstring says."""
    folder.mkdir(parents=True, exist_ok=True)
    if case.setup:
        case.setup(folder)
    before = snapshot(folder)
    run = subprocess.run(command(case, folder), capture_output=True, text=True, cwd=folder, timeout=case.timeout,
                         env={**os.environ, **case.env})
    shown = f"exit {run.returncode}\nstdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-3000:]}"
    assert run.returncode == case.code, shown
    assert "Traceback" not in run.stderr, shown
    if case.code == 2:
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error:" in line]
        assert len(errors) == 1 and errors[0] == lines[-1], f"one error line, the last one: {shown}"
        assert re.search(case.message, errors[0]), f"{errors[0]!r} does not match {case.message!r}"
    else:
        assert re.search(case.message, run.stdout + run.stderr), shown
    after = snapshot(folder)
    if case.keeps:
        after = {k: v for k, v in after.items() if k in before or not re.fullmatch(case.keeps, k)}
    assert after == before, f"left behind or changed: {sorted(set(after.items()) ^ set(before.items()))}"
    return run


# Setups: each writes what a case needs into its folder.


def then(*steps):
    def setup(folder: Path) -> None:
        for step in steps:
            step(folder)
    return setup


def victim(name: str = "victim"):
    """Setup: a user's folder holding a file that must survive."""
    def setup(folder: Path) -> None:
        (folder / name).mkdir(parents=True)
        (folder / name / "precious.txt").write_text("precious\n")
    return setup


def write(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def truncate(name: str, keep: float):
    def setup(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:int(len(data) * keep)])
    return setup


def png(name: str, h: int, w: int):
    return lambda folder: cv2.imwrite(str(folder / name), np.full((h, w, 3), 128, np.uint8))


def huge_png_header(name: str, h: int, w: int):
    """Setup: a PNG whose header declares h x w (its data is a stub: the size must be refused before decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return lambda folder: (folder / name).write_bytes(data)


def frames(name: str = "frames", count: int = 3):
    def setup(folder: Path) -> None:
        (folder / name).mkdir()
        for i in range(count):
            cv2.imwrite(str(folder / name / f"{i:05d}.jpg"), np.full((64, 96, 3), 60 * i, np.uint8))
    return setup


def video(name: str):
    def setup(folder: Path) -> None:
        writer = cv2.VideoWriter(str(folder / name), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
        for i in range(5):
            writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
        writer.release()
    return setup
