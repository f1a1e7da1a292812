"""What a run shows and keeps while it trains: metrics.jsonl, a progress line, collapse warnings."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgedino.atomic import atomic_path
from edgedino.errors import EdgeDinoError
from edgedino.schemas import stamp

NAME = "metrics.jsonl"


class MetricsLog:
    """One JSON object per step in out/metrics.jsonl (edgedino/schemas/train-metrics.schema.json); on resume, lines
    past the checkpoint are dropped."""

    def __init__(self, out: Path, start: int):
        self.path = Path(out) / NAME
        kept = [ln for ln, record in self.records() if record["step"] < start]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in kept))
        self.file = self.path.open("a")

    def records(self) -> list[tuple[str, dict]]:
        """(line, record) of each step logged so far; a last line cut short by a killed run or a full disk is
        dropped with a note, any other line that is not a step's record is an error naming it."""
        lines = [ln for ln in self.path.read_text().splitlines() if ln.strip()] if self.path.exists() else []
        out = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                step = record["step"] if isinstance(record, dict) else None
            except (json.JSONDecodeError, KeyError):
                step = None
            if isinstance(step, int):
                out.append((line, record))
            elif number == len(lines) and not line.endswith("}"):
                print(f"note: {self.path}: dropped its last line, cut short when the run stopped", file=sys.stderr)
            else:
                raise EdgeDinoError(f"{self.path} line {number} is not a step's record: {line[:60]!r}")
        return out

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(stamp("train-metrics", record)) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_metrics(out: str | Path) -> list[dict]:
    """The records of a run's metrics.jsonl."""
    return [json.loads(ln) for ln in (Path(out) / NAME).read_text().splitlines() if ln.strip()]


class Progress:
    """A one-line progress bar (redrawn on a terminal, a line every `every` steps otherwise)."""

    def __init__(self, start: int, stop: int, every: int, stream=None):
        stream = stream or sys.stderr  # the stderr of now, not of import time (it may have been replaced since)
        self.start, self.stop, self.every, self.stream = start, stop, max(every, 1), stream
        self.tty = stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, step: int, record: dict, terms: list[str]) -> None:
        done = step + 1 - self.start
        if not self.tty and done % self.every and step + 1 != self.stop:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.stop - step - 1)
        width = 20
        filled = int(width * (step + 1) / self.stop)
        parts = " ".join(f"{t} {record[t]:.4f}" for t in terms if t in record)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {step + 1}/{self.stop} loss {record['loss']:.4f} "
                f"({parts}) lr {record['lr']:.2e} m {record['momentum']:.4f} {record['images_per_s']:.1f} img/s "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


class CollapseMonitor:
    """Warns when the teacher looks collapsed: near-uniform outputs (entropy) or identical features (std)."""

    def __init__(self, after: int, max_entropy: float = 0.98, min_std: float = 0.05, stream=None):
        self.after, self.max_entropy, self.min_std = after, max_entropy, min_std
        self.stream = stream or sys.stderr  # the stderr of now, not of import time
        self.warned: set[str] = set()

    def check(self, step: int, record: dict) -> list[str]:
        """Warnings for this step (each kind printed once per run); empty while warming up."""
        if step < self.after:
            return []
        found = []
        ent, std = record.get("teacher_entropy"), record.get("feature_std")
        if ent is not None and ent > self.max_entropy:
            found.append(("entropy", f"teacher outputs are near uniform (normalised entropy {ent:.3f} > "
                                     f"{self.max_entropy}): collapse to uniform? lower loss.teacher_temp"))
        if std is not None and std < self.min_std:
            found.append(("std", f"teacher features barely vary across images (std x sqrt(D) {std:.3f} < "
                                 f"{self.min_std}): collapse to a constant? check lr and ema.momentum"))
        new = [msg for kind, msg in found if kind not in self.warned]
        for kind, msg in found:
            if kind not in self.warned:
                self.warned.add(kind)
                self.stream.write(f"\nwarning: step {step}: {msg}\n")
        return new
