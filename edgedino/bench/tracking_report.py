"""Tracking benchmark output: a terminal table, Markdown, JSON and the J&F-against-FPS plot."""

from __future__ import annotations

from edgedino.bench.load import load_line, warning_lines

HEADER = ("method", "protocol", "input", "J", "F", "J&F", "box IoU", "FPS", "decode", "prep", "backbone", "propagate",
          "draw")
LEGEND = ("J: region IoU, F: boundary F-measure (DAVIS definitions), means over all objects of all sequences; "
          "box IoU: the method's box (the mask's box for mask methods) against the annotated mask's box; FPS: end "
          "to end (decode, preprocess, backbone, propagate, draw); stage columns: mean ms per frame. CSRT and KCF "
          "give boxes only, so they have box IoU and no J/F; no-motion copies the first mask to every frame. "
          "protocol: edgedino (ours, faster) or dinov3 (DINOv3's notebook op for op); only dinov3 at short side "
          "960 on DAVIS-2017 val with official weights compares with the paper's Table 14.")


def _cells(entry: dict) -> tuple[str, ...]:
    def f(value, fmt=".3f"):
        return "-" if value is None else format(value, fmt)

    ms = entry.get("ms") or {}
    size = "x".join(str(v) for v in entry["input_hw"]) if entry.get("input_hw") else "-"
    return (entry["method"], entry.get("protocol", "-"), size, f(entry["J_mean"]), f(entry["F_mean"]),
            f(entry["JF_mean"]), f(entry["box_iou_mean"]), f(entry["fps"], ".1f"),
            *(f(ms.get(k), ".1f") for k in ("decode", "preprocess", "backbone", "propagate", "draw")))


def _rows(report: dict) -> list[tuple[str, ...]]:
    return [_cells(e) for e in report["methods"] + report["baselines"]]


def header_lines(report: dict) -> list[str]:
    cpu = report["machine"]["cpu"]
    seqs = report["methods"][0]["sequences"] if report["methods"] else report["baselines"][0]["sequences"]
    return [f"data: {report['data']} ({len(seqs)} sequences, {sum(s['frames'] for s in seqs)} tracked frames)",
            f"machine: {cpu['model']}, {cpu['cores']} cores; {report['threads']} threads; "
            f"{load_line(report['load_average'])}",
            f"weights: {report['weights']}"]


def table(report: dict) -> str:
    rows = [HEADER] + _rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = header_lines(report) + [""]
    lines += ["  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]
    return "\n".join(lines + ["", LEGEND] + warning_lines(report))


def markdown(report: dict) -> str:
    lines = ["# edgedino tracking benchmark", ""] + [f"- {line}" for line in header_lines(report)] + [""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(report)]
    return "\n".join(lines + ["", LEGEND, ""] + [f"- {w}" for w in warning_lines(report)])


def write(report: dict, json_path=None, md_path=None, plot_path=None) -> None:
    """Write the JSON, Markdown and plot (J&F against FPS) files asked for, each atomically."""
    from edgedino.bench.plots import tracking_plot
    from edgedino.bench.report import write_files

    write_files(report, "benchmark-tracking", markdown, tracking_plot, json_path, md_path, plot_path)
