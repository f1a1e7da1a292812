"""Labelled scatter plots of benchmark results: one marker per point, its label offset from it on a leader line and
moved until it covers no marker and no other label, log axes with plain-number ticks (5, 10, 20, 50 ms)."""

from __future__ import annotations

import math
from dataclasses import dataclass

GAP_PT = 7  # space between a marker's edge and the nearest corner of its label, in points
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (0.7, 0.7), (-0.7, 0.7), (0.7, -0.7), (-0.7, -0.7), (0.4, 0.9),
              (-0.4, 0.9), (0.4, -0.9), (-0.4, -0.9))
RINGS = (1, 1.7, 2.5, 3.5, 4.8, 6.5)  # distances tried, in multiples of the marker radius plus the gap
OUTSIDE_COST = 10  # a label's area outside the axes counts this many times an overlap's


@dataclass(frozen=True)
class Point:
    """One measured result: where it sits, what it says, and how it is drawn (marker area in points²)."""

    x: float
    y: float
    label: str
    colour: str
    marker: str
    area: float = 36.0


def plain_log_axis(axis) -> None:
    """Log-scale ticks at 1, 2 and 5 times powers of ten, written as plain numbers (5, 10, 20, 50, not 10¹)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def draw_points(ax, points: list[Point]) -> list:
    """Each point as its own marker (a Line2D, so its drawn extent is known); the markers in point order."""
    return [ax.plot([p.x], [p.y], marker=p.marker, markersize=math.sqrt(p.area), linestyle="", color=p.colour,
                    markeredgecolor="black", markeredgewidth=0.6, alpha=0.85, zorder=3)[0] for p in points]


def _overlap(a, b) -> float:
    """Shared area of two display-space boxes (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0) * max(h, 0)


def _offsets(point: Point):
    """Candidate label offsets (points) around a marker: every direction close by first, then further out."""
    radius = math.sqrt(point.area) / 2 + GAP_PT
    for ring in RINGS:
        for dx, dy in DIRECTIONS:
            yield dx * radius * ring, dy * radius * ring, dx, dy


def place_labels(ax, points: list[Point], markers: list, fontsize: float = 7, avoid: tuple = ()) -> list:
    """An annotation per point, at the first candidate offset whose text covers no marker, no label placed before
    it and none of the `avoid` artists, and stays inside the axes; where none is free, the least-covering one.
    Leader lines join each label to its marker."""
    from matplotlib.text import Text

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    marker_boxes = [m.get_window_extent(renderer) for m in markers]
    inside = ax.get_window_extent(renderer)
    placed, labels = [a.get_window_extent(renderer) for a in avoid], [None] * len(points)
    for i in _crowded_first(marker_boxes):
        point = points[i]
        best = None
        for ox, oy, dx, dy in _offsets(point):
            ann = ax.annotate(point.label, (point.x, point.y), xytext=(ox, oy), textcoords="offset points",
                              fontsize=fontsize, color=point.colour, zorder=4,
                              ha="left" if dx > 0 else "right" if dx < 0 else "center",
                              va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                              arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.6, "shrinkA": 0,
                                          "shrinkB": math.sqrt(point.area) / 2})
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer)  # the text alone, not its leader line
            cost = sum(_overlap(box, b) for b in marker_boxes + placed)
            cost += OUTSIDE_COST * (box.width * box.height - _overlap(box, inside))
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if cost == 0:
                break
        placed.append(best[2])
        labels[i] = best[1]
    return labels


def _crowded_first(boxes: list) -> list[int]:
    """Point indices, those with the most markers near them first: they have the fewest free places to choose."""
    def near(i: int) -> int:
        a = boxes[i]
        return sum(abs(a.x0 - b.x0) < 6 * a.width and abs(a.y0 - b.y0) < 3 * a.height for b in boxes)

    return sorted(range(len(boxes)), key=lambda i: -near(i))
