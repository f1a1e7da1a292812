"""The benchmark pictures: latency against parity (the speed/accuracy trade-off users choose on, artifact size as
marker area) and tracking J&F against FPS; colours from the formats table, a marker per precision."""

from __future__ import annotations

import math
from pathlib import Path

from edgedino.bench.peers import PEERS
from edgedino.bench.scatter import Point, draw_points, place_labels, plain_log_axis
from edgedino.caption import RANDOM_WEIGHTS
from edgedino.figures import pyplot, save_figure
from edgedino.runtime.formats import FORMATS, format_of

COLOURS = {"torch": "black", "torch.compile": "grey", **{f.name: f.colour for f in FORMATS.values()},
           **{p.name: p.colour for p in PEERS.values()}}
MARKERS = {"fp32": "o", "fp16": "s", "bf16": "P", "int8-weights": "^", "int8": "D", "palettize4": "v"}
GAP_FLOOR = 1e-6  # 1 - cosine below this (fp32 exports, PyTorch itself) is drawn on the top line
AREA_PER_MB = 2.2  # marker area in points² per MB on disk
SIZE_KEYS = (10, 30, 100)  # MB, the marker sizes shown in the legend
CAPTION = ("Up is closer to PyTorch: the y axis is 1 − cosine on a log scale, labelled as the cosine (mean over "
           "patch tokens, vs PyTorch fp32 on held-out images), so 0.99, 0.999 and 0.9999 are as far apart as 0.9 "
           f"and 0.99; everything closer to 1 than {GAP_FLOOR:f} (fp32 exports, PyTorch itself) sits on the top line. "
           "Left is faster: median latency, log scale. Colour: the target; shape: the precision; area: size on disk. "
           "One panel per model and setting (size, threads, batch).")

TRACKING_CAPTION = ("One point per model, target, precision and short side (the label's number): J&F as DAVIS defines "
                    "it, averaged over every object of every sequence, against end-to-end frames per second (decode, "
                    "preprocess, backbone, propagate, draw). The dashed line is the no-motion baseline (first mask "
                    "copied to every frame); CSRT and KCF give boxes only, so they have no J&F (see the table).")


def _cos_ticks(worst: float) -> tuple[list[float], list[str]]:
    """Ticks of the 1 - cos axis from `worst` up to GAP_FLOOR, labelled as cosines (0.9, 0.99, ..., ≥0.999999)."""
    ticks = [10.0 ** -k for k in range(7) if GAP_FLOOR <= 10.0 ** -k <= worst]
    names = [f"{1 - t:.{round(-math.log10(t))}f}" if t < 1 else "0" for t in ticks]
    return ticks, [f"≥{n}" if t == GAP_FLOOR else n for t, n in zip(ticks, names, strict=True)]


def _gap(cos: float) -> float:
    """1 - cos, kept between GAP_FLOOR (the top line) and 1 (cos 0, the bottom of the axis)."""
    return min(max(1.0 - cos, GAP_FLOOR), 1.0)


def _legends(ax, colours: dict[str, str], markers: dict[str, str], sizes: tuple[float, ...]) -> None:
    """Three legends right of the axes: colour is the target, marker the precision, area the size on disk."""
    from matplotlib.lines import Line2D

    def handle(**kw):
        return Line2D([], [], linestyle="", markeredgecolor="black", markeredgewidth=0.6, **kw)

    groups = [("target", [handle(marker="o", color=c, markersize=7) for c in colours.values()], list(colours)),
              ("precision", [handle(marker=m, color="white", markersize=7) for m in markers.values()], list(markers)),
              ("size on disk", [handle(marker="o", color="0.8", markersize=(AREA_PER_MB * s) ** 0.5) for s in sizes],
               [f"{s:g} MB" for s in sizes])]
    inches = ax.get_position().height * ax.figure.get_figheight()  # one unit of axes fraction, in inches
    top = 1.0
    for title, handles, names in (g for g in groups if g[2]):
        legend = ax.legend(handles, names, title=title, loc="upper left", bbox_to_anchor=(1.02, top), fontsize=7,
                           title_fontsize=8, frameon=False, labelspacing=0.9 if title == "size on disk" else 0.4,
                           alignment="left")
        ax.add_artist(legend)
        top -= (0.4 + 0.17 * len(names) * (1.6 if title == "size on disk" else 1)) / inches


def _setting(row: dict) -> str:
    """A panel's setting: size, threads and batch ('224x224, 2 threads, batch 1')."""
    return f"{row['imgsz']}, {row['threads']} thread{'s' if row['threads'] > 1 else ''}, batch {row['batch']}"


def latency_figure(report: dict):
    """(figure, panels): one panel per setting (size, threads, batch; the rows) and model (the columns), each a
    marker per measured row at its median latency and parity: colour the target, shape the precision, area the
    size on disk. Within a panel target and precision name a row, so no marker needs a label. panels: a list of
    (axes, setting, model, markers) in drawing order."""
    plt = pyplot()
    rows = [r for r in report["rows"] if r["latency_ms"] and r["parity_cos"] is not None]
    settings = list(dict.fromkeys(_setting(r) for r in rows)) or ["no measured rows"]
    models = list(dict.fromkeys(r["model"] for r in rows)) or ["-"]
    gaps = [_gap(r["parity_cos"]) for r in rows] or [GAP_FLOOR]
    worst = 10.0 ** min(math.floor(math.log10(max(gaps))) + 1, 0)  # the decade above the worst parity
    width, height = 3.6 * len(models) + 2.9, 2.1 * len(settings) + 1.5  # inches: panels, legends, caption
    fig, axes = plt.subplots(len(settings), len(models), figsize=(width, height), dpi=130, squeeze=False,
                             sharey=True)
    fig.subplots_adjust(left=0.8 / width, right=1 - 2.1 / width, top=1 - 0.6 / height, bottom=1.05 / height,
                        hspace=0.6, wspace=0.1)
    panels = []
    for i, setting in enumerate(settings):
        for j, model in enumerate(models):
            ax = axes[i][j]
            mine = [r for r in rows if _setting(r) == setting and r["model"] == model]
            points = [Point(r["latency_ms"]["median"], _gap(r["parity_cos"]), r["target"],
                            COLOURS.get(r["target"], "tab:red"), MARKERS.get(r["precision"], "X"),
                            AREA_PER_MB * (r["size_mb"] or 1)) for r in mine]
            markers = draw_points(ax, points)
            ax.set_xscale("log")
            ax.set_yscale("log")
            plain_log_axis(ax.xaxis)
            xs = [p.x for p in points] or [10.0]
            ax.set_xlim(min(xs) / 1.4, max(xs) * 1.4)
            ax.set_ylim(worst, GAP_FLOOR / 10)  # inverted: the best parity at the top
            ax.set_yticks(*_cos_ticks(worst))
            ax.yaxis.set_minor_locator(plt.NullLocator())
            ax.tick_params(labelsize=7)
            ax.set_title(f"{model}: {setting}", fontsize=8)
            ax.grid(alpha=0.3, which="major")
            if not mine:
                ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", fontsize=7, color="0.4")
            panels.append((ax, setting, model, markers))
    for ax in axes[-1]:
        ax.set_xlabel("median latency, ms (log; left is faster)", fontsize=7)
    for row_axes in axes:
        row_axes[0].set_ylabel("cosine vs PyTorch", fontsize=7)
    cpu = report["machine"]["cpu"]
    fig.suptitle(f"edgedino benchmark: {cpu['model']}, {cpu['cores']} cores", fontsize=10)
    used = {r["target"] for r in rows}, {r["precision"] for r in rows}
    _legends(axes[0][-1], {k: v for k, v in COLOURS.items() if k in used[0]},
             {k: v for k, v in MARKERS.items() if k in used[1]}, SIZE_KEYS)
    fig.text(0.01, 0.005, CAPTION, fontsize=7, wrap=True, va="bottom", color="0.25")
    return fig, panels


def plot(report: dict, path: str | Path) -> Path:
    """Write the latency-against-parity picture as a PNG."""
    return save_figure(latency_figure(report)[0], path)


def _tracking_point(entry: dict) -> tuple[Point, str, str]:
    """A tracking method as (point, target, precision); target and precision from the entry, or (reports written
    before they were recorded) from the artifact's suffix and the method's last word."""
    fmt = format_of(entry.get("artifact") or "")
    target = entry.get("target") or (fmt.name if fmt else "?")
    precision = entry.get("precision") or entry["method"].split()[-1]
    side = entry.get("short_side") or min(entry.get("input_hw") or [0])
    model = entry["method"].split()[0]
    return Point(entry["fps"], entry["JF_mean"], f"{model} {side}", COLOURS.get(target, "tab:red"),
                 MARKERS.get(precision, "X"), 64.0), target, precision


def tracking_figure(report: dict):
    """(figure, axes, labels, markers) of J&F against end-to-end FPS, one point per model/target/precision/side."""
    plt = pyplot()
    entries = [e for e in report["methods"] if e["fps"] and e["JF_mean"] is not None]
    points, targets, precisions = zip(*(_tracking_point(e) for e in entries), strict=True) if entries else ((),) * 3
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=130)
    fig.subplots_adjust(left=0.09, right=0.76, top=0.9, bottom=0.2)
    markers = draw_points(ax, list(points))
    ax.set_xscale("log")
    plain_log_axis(ax.xaxis)
    xs = [p.x for p in points] or [10.0]
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    scores = [p.y for p in points] + [b["JF_mean"] for b in report["baselines"] if b["JF_mean"] is not None]
    ax.set_ylim(0, min(1.0, max(scores or [1.0]) * 1.25 + 0.02))
    lines = []
    for b in report["baselines"]:
        if b["JF_mean"] is not None and not b["fps"]:
            ax.axhline(b["JF_mean"], color="0.5", linestyle="--", linewidth=0.8, zorder=1)
            lines.append(ax.annotate(f"{b['method']} ({b['kind']})", (0.01, b["JF_mean"]),
                                     xycoords=("axes fraction", "data"), xytext=(0, 3), textcoords="offset points",
                                     fontsize=7, color="0.35"))
    ax.set_xlabel("end-to-end FPS (log scale; right is faster)")
    ax.set_ylabel("J&F (mean of region IoU and boundary F)")
    ax.set_title(f"edgedino tracking: {report['data']}, {report['machine']['cpu']['model']}, "
                 f"{report['threads']} threads", fontsize=10)
    ax.grid(alpha=0.3, which="major")
    _legends(ax, {t: COLOURS.get(t, "tab:red") for t in dict.fromkeys(targets)},
             {p: MARKERS.get(p, "X") for p in dict.fromkeys(precisions)}, ())
    fig.text(0.02, 0.02, TRACKING_CAPTION, fontsize=7, wrap=True, va="bottom", color="0.25")
    return fig, ax, place_labels(ax, list(points), markers, avoid=tuple(lines)), markers


def random_tracking(report: dict) -> bool:
    """Whether the tracked features came from random weights (the report's weights note, or any artifact's)."""
    return str(report.get("weights", "")).startswith("random") or any(
        e.get("random_weights") for e in report["methods"])


def tracking_plot(report: dict, path: str | Path) -> Path:
    """Write the J&F-against-FPS picture as a PNG (noted in a corner when the weights were random)."""
    return save_figure(tracking_figure(report)[0], path, RANDOM_WEIGHTS if random_tracking(report) else None)
