"""Benchmark output: terminal table with a legend, Markdown, JSON, and the plot (edgedino.bench.plots)."""

from __future__ import annotations

from edgedino.atomic import atomic_path
from edgedino.bench.load import load_line, warning_lines
from edgedino.schemas import write_json

STATUS = {"measured": "✅", "verify-failed": "❎", "export-failed": "❌", "failed": "❌", "skipped": "➖"}
LEGEND = ("✅ measured · ❎ parity below its precision's bound (at export, or here for bf16 and peer rows; "
          "measured anyway) · ❌ export or run failed (reason below) · ➖ skipped: cannot run on this CPU (reason "
          "below) · peer-*: by-hand peer paths from transformers' DINOv3 with the same weights, int8 by the "
          "converter's default quantizer · bf16: the fp32 OpenVINO IR compiled with inference precision bf16 · "
          "ms/img: median / batch · FPS: images per second · ×eager: speed-up over PyTorch eager fp32 in this run · "
          "patch cos, cls cos: vs PyTorch fp32 on the same images · dense: % of patches matched within one patch "
          "under known homographies · %peak: share of this run's GEMM peak (fp32 peak for float rows, int8 peak "
          "for int8 rows) · AVX2 ms: median with the runtime limited to AVX2 (torch, torch.compile, openvino and "
          "peer-openvino rows, not bf16; '-' elsewhere, or where the limit did not take effect: see below)")
HEADER = ("model", "size", "thr", "batch", "target", "precision", "", "MB", "RSS MB", "median ms", "p90 ms",
          "min ms", "ms/img", "FPS", "×eager", "patch cos", "cls cos", "dense %", "GMAC/s", "%peak", "AVX2 ms")


def _cells(row: dict) -> tuple[str, ...]:
    def f(value, fmt):
        return "-" if value is None else format(value, fmt)

    lat = row["latency_ms"] or {}
    return (row["model"], row["imgsz"], str(row["threads"]), str(row["batch"]), row["target"], row["precision"],
            STATUS[row["status"]], f(row["size_mb"], ".1f"), f(row["rss_mb"], ".0f"), f(lat.get("median"), ".1f"),
            f(lat.get("p90"), ".1f"), f(lat.get("min"), ".1f"),
            f(lat["median"] / row["batch"] if lat else None, ".2f"), f(row["fps"], ".1f"),
            f(row["speedup_vs_torch"], ".2f"), f(row["parity_cos"], ".4f"), f(row.get("cls_cos"), ".4f"),
            f(row["dense_quality"], ".1f"), f(row["gmacs_per_s"], ".0f"),
            "-" if row["peak_share"] is None else f"{100 * row['peak_share']:.0f}%", f(row.get("avx2_ms"), ".1f"))


def header_lines(report: dict) -> list[str]:
    cpu = report["machine"]["cpu"]
    peaks = "; ".join(f"{t} threads: fp32 {p['fp32']:.0f}, int8 {p['int8']:.0f} GMAC/s"
                      for t, p in report["peak_gmacs"].items())
    tools = ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v)
    return [f"machine: {cpu['model']}, {cpu['cores']} cores, flags {' '.join(cpu['flags']) or '-'}, "
            f"{report['machine']['os']}; {load_line(report['load_average'])}",
            f"GEMM peak (onnxruntime, 2048³): {peaks}", f"versions: {tools}"]


def table(report: dict) -> str:
    rows = [HEADER] + [_cells(r) for r in report["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = header_lines(report) + [""]
    lines += ["  ".join(c.rjust(w) if i >= 7 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]
    lines += ["", LEGEND] + reasons(report) + warning_lines(report) + [""] + profiles(report)
    return "\n".join(lines)


def reasons(report: dict) -> list[str]:
    """Why each row failed or was skipped, then what each AVX2-only run's check saw (or why it has none)."""
    def name(r):
        return f"{r['model']} {r['imgsz']} b{r['batch']} {r['threads']}t {r['target']} {r['precision']}"

    rows = report["rows"]
    return ([f"{STATUS[r['status']]} {name(r)}: {r['reason']}" for r in rows if r["reason"]]
            + [f"AVX2 {name(r)}: {r['avx2_note']}" for r in rows if r.get("avx2_note")])


def profiles(report: dict) -> list[str]:
    """The per-op table of every profiled row (benchmark --profile)."""
    from edgedino.bench.opprofile import markdown as op_table

    return [op_table(f"{r['model']} {r['imgsz']} b{r['batch']} {r['threads']}t {r['target']} {r['precision']}",
                     r["profile"]) for r in report["rows"] if r.get("profile")]


def markdown(report: dict) -> str:
    lines = ["# edgedino benchmark", ""] + [f"- {line}" for line in header_lines(report)] + [""]
    lines += ["| " + " | ".join(h or "status" for h in HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in report["rows"]]
    lines += ["", LEGEND, ""] + [f"- {line}" for line in reasons(report) + warning_lines(report)]
    lines += ["", "## Per-op profiles", ""] + profiles(report) if any(r.get("profile") for r in report["rows"]) else []
    return "\n".join(lines) + "\n"


def write(report: dict, json_path=None, md_path=None, plot_path=None) -> None:
    """Write the JSON, Markdown and plot (latency against parity) files asked for, each atomically."""
    from edgedino.bench.plots import plot

    write_files(report, "benchmark", markdown, plot, json_path, md_path, plot_path)


def write_files(report: dict, name: str, markdown_of, plot, json_path=None, md_path=None, plot_path=None) -> None:
    """A benchmark report's files: JSON with the schema `name`, Markdown from `markdown_of`, and `plot`'s picture;
    each atomically, each only when its path is given."""
    if json_path:
        write_json(json_path, name, report)
    if md_path:
        with atomic_path(md_path) as tmp:
            tmp.write_text(markdown_of(report))
    if plot_path:
        plot(report, plot_path)
