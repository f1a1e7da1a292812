"""Whether a benchmark's machine was busy while it measured: the load average against the cores, and the spread of
each row's timed runs (p90 / median). The latency and tracking benchmarks print and store the same warnings."""

from __future__ import annotations

SPREAD = 1.25  # p90 / median latency above this: the row's timed runs were disturbed


def load_line(load: dict) -> str:
    """'load average (1 min) 0.4 at start, 1.9 at end' from {"start": [1, 5, 15 min] | None, "end": ...}, or that
    the system keeps none."""
    start, end = load["start"], load["end"]
    if start is None or end is None:
        return "load average: not kept on this system"
    return f"load average (1 min) {start[0]:.1f} at start, {end[0]:.1f} at end"


def warning_lines(report: dict) -> list[str]:
    """A report's busy-machine warnings as the tables print them, one line each."""
    return [f"warning: {w}" for w in report["warnings"]]


def busy_warnings(load: dict, cores: int | None, threads: int, spreads: dict[str, tuple[float, float]]) -> list[str]:
    """One line per sign that other work competed for the CPU: the 1-minute load average at start, or at end less
    the benchmark's own `threads`, left fewer than `threads` cores free; or a row's p90 / median (from `spreads`,
    label -> (median ms, p90 ms)) is above SPREAD. Empty when the run looks clean."""
    warnings = []
    start, end = load["start"], load["end"]
    if start is not None and end is not None and cores:
        others = max(start[0], end[0] - threads)
        if others + threads > cores:
            warnings.append(f"machine loaded: {load_line(load)} on {cores} cores, with {threads} benchmark "
                            "threads; other work competed for the CPU, so times are slower and noisier than on an "
                            "idle machine")
    for label, (median, p90) in spreads.items():
        if median > 0 and p90 / median > SPREAD:
            warnings.append(f"noisy timings: {label} p90 / median = {p90 / median:.2f} (> {SPREAD}); rerun on an "
                            "idle machine before comparing it")
    return warnings
