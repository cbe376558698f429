"""Inline SVG charts of the run report: histograms, category shares, lines over event time.

Plain strings, no library and no script: a report opens offline in any
browser. Each chart is an ``<svg>`` with ``data-chart`` naming its kind and
``data-points``/``data-bars`` saying how much it drew (tests and curious
readers look there); every bar and point has a ``<title>`` tooltip. No
``xmlns`` attribute: inline SVG in HTML needs none, and the page then holds
no URL at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

PALETTE = ("#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#e67700",
           "#5c940d")
REFERENCE_COLOR = "#8c96a3"
WINDOW_COLOR = "#1f5fbf"
ALERT_COLOR = "#c92a2a"
WIDTH, HEIGHT = 560, 200
LINES_WIDTH = 1060
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 34

Point = tuple[float, float]


def utc(ts: float, seconds: bool = True) -> str:
    """Event time as ``2026-01-01 00:04:50Z``.

    >>> utc(1767225890.0)
    '2026-01-01 00:04:50Z'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "")
                                                     ) + "Z"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _svg(kind: str, height: int, body: list[str], width: int = WIDTH, **data: object) -> str:
    attributes = "".join(f' data-{name.replace("_", "-")}="{escape(str(value))}"'
                         for name, value in data.items())
    return (f'<svg class="chart" data-chart="{kind}"{attributes} viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img">' + "".join(body) + "</svg>")


def _legend(entries: Sequence[tuple[str, str]], y: float) -> list[str]:
    parts, x = [], float(LEFT)
    for name, color in entries:
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" '
                     f'fill="{color}" opacity="0.8"/><text x="{x + 14:.1f}" y="{y:.1f}" '
                     f'class="legend">{escape(name)}</text>')
        x += 22 + 6.5 * len(name)
    return parts


def _shares(counts: Sequence[float]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def histogram(distribution: dict[str, Any], window_label: str, side_by_side: bool = False) -> str:
    """Reference and window histograms of a numeric feature, overlaid (or side by side).

    Bins are the reference's quantile bins (p1, p5, p10, …, p95, p99): bar
    heights are shares per unit of the feature, so the shapes compare as
    densities. The two open outer bins (below p1, from p99 on) are drawn as
    wide as their neighbours. With ``side_by_side`` each bin holds the
    reference's bar in its left half and the window's in its right half.
    """
    edges: list[float] = distribution["edges"]
    reference = _shares(distribution["reference"])
    window = _shares(distribution["window"])
    bins = len(reference)
    if len(edges) >= 2:
        first, last = edges[1] - edges[0], edges[-1] - edges[-2]
        bounds = [edges[0] - first, *edges, edges[-1] + last]
    else:                      # one edge (a constant reference): two bars of equal width
        bounds = [edges[0] - 1.0, edges[0], edges[0] + 1.0] if edges else [0.0, 1.0]
    bounds = bounds[:bins + 1]
    low, high = bounds[0], bounds[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(value: float) -> float:
        return LEFT + (value - low) / (high - low) * plot_w if high > low else float(LEFT)

    density = [[share / max(bounds[i + 1] - bounds[i], 1e-300) for i, share in enumerate(side)]
               for side in (reference, window)]
    top = max(max(side) for side in density) or 1.0
    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
            'class="axis"/>']
    names = ("reference", window_label)
    for side, (shares, heights, color) in enumerate(zip(
            (reference, window), density, (REFERENCE_COLOR, WINDOW_COLOR), strict=True)):
        for i, (share, height) in enumerate(zip(shares, heights, strict=True)):
            x0, x1 = x_of(bounds[i]), x_of(bounds[i + 1])
            if side_by_side:
                middle = (x0 + x1) / 2
                x0, x1 = (x0, middle) if side == 0 else (middle, x1)
            h = height / top * plot_h
            span = ("below " + _number(edges[0]) if i == 0 else
                    "from " + _number(edges[-1]) if i == bins - 1 else
                    f"{_number(bounds[i])} to {_number(bounds[i + 1])}")
            body.append(f'<rect class="bar {("reference", "window")[side]}" x="{x0 + 0.5:.1f}" '
                        f'y="{TOP + plot_h - h:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
                        f'height="{h:.1f}" fill="{color}" '
                        f'opacity="{0.85 if side_by_side else 0.45 if side else 0.6}">'
                        f'<title>{escape(names[side])}: {share:.1%} of values {span}</title>'
                        "</rect>")
    last_tick = -math.inf
    for value in edges:
        x = x_of(value)
        if x - last_tick < 48:      # the reference's quantiles crowd where values do
            continue
        last_tick = x
        body.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" '
                    f'y2="{TOP + plot_h + 4}" class="axis"/><text x="{x:.1f}" '
                    f'y="{TOP + plot_h + 15}" class="tick" text-anchor="middle">'
                    f"{_number(value)}</text>")
    body += _legend([("reference", REFERENCE_COLOR), (window_label, WINDOW_COLOR)], HEIGHT - 4)
    return _svg("distribution", HEIGHT, body, type="numeric", bars=2 * bins)


def category_shares(distribution: dict[str, Any], window_label: str, limit: int = 12) -> str:
    """Reference and window shares of a categorical feature's frequent categories.

    The categories whose share moved most come first; ``(other)`` holds the
    rest of the reference's categories and every new one.
    """
    names: list[str] = distribution["categories"]
    reference = _shares(distribution["reference"])
    window = _shares(distribution["window"])
    order = sorted(range(len(names)), key=lambda i: -abs(window[i] - reference[i]))[:limit]
    row, label_w = 24, 130
    height = TOP + row * len(order) + 22
    plot_w = WIDTH - label_w - 110
    top = max([*reference, *window, 1e-9])
    body = []
    for position, i in enumerate(order):
        y = TOP + position * row
        body.append(f'<text x="{label_w - 6}" y="{y + 13}" class="tick" text-anchor="end">'
                    f"{escape(names[i][:22])}</text>")
        for side, (share, color) in enumerate(((reference[i], REFERENCE_COLOR),
                                               (window[i], WINDOW_COLOR))):
            body.append(f'<rect class="bar {("reference", "window")[side]}" x="{label_w}" '
                        f'y="{y + 2 + side * 9}" width="{max(share / top * plot_w, 0.5):.1f}" '
                        f'height="8" fill="{color}" opacity="0.8"><title>'
                        f'{escape(names[i])}: {("reference", window_label)[side]} {share:.1%}'
                        "</title></rect>")
        body.append(f'<text x="{label_w + plot_w + 8}" y="{y + 13}" class="tick">'
                    f"{reference[i]:.1%} → {window[i]:.1%}</text>")
    body += _legend([("reference", REFERENCE_COLOR), (window_label, WINDOW_COLOR)], height - 4)
    return _svg("distribution", height, body, type="categorical", bars=2 * len(order))


def lines(kind: str, series: Sequence[tuple[str, Sequence[Point]]], *,
          threshold: float | None = None, reference: float | None = None,
          markers: Sequence[tuple[float, str]] = (), y_label: str = "",
          from_zero: bool = True) -> str:
    """Lines over event time (x: Unix seconds) with an optional threshold or reference level.

    ``markers`` are ``(ts, text)`` vertical lines: the alerts. Without
    ``from_zero`` the y axis spans the values only (a metric near 0.9 moves visibly).
    """
    width = LINES_WIDTH
    points = [p for _, line in series for p in line]
    if not points:
        return _svg(kind, 60, [f'<text x="{LEFT}" y="30" class="tick">no closed window</text>'],
                    width=width, points=0)
    xs = [x for x, _ in points]
    levels = [y for _, y in points] + [v for v in (threshold, reference) if v is not None]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(levels), max(levels)
    pad = (y_high - y_low) * 0.08 or abs(y_high) * 0.05 or 1.0
    y_low, y_high = (min(0.0, y_low) if from_zero else y_low - pad), y_high + pad
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + ((x - x_low) / (x_high - x_low) * plot_w if x_high > x_low else plot_w / 2)

    def py(y: float) -> float:
        return TOP + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    def at(x: float, y: float) -> str:
        return f"{px(x):.1f},{py(y):.1f}"

    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" y2="{TOP + plot_h}" '
            'class="axis"/>']
    for value in (y_low, (y_low + y_high) / 2, y_high):
        body.append(f'<text x="{LEFT - 4}" y="{py(value) + 4:.1f}" class="tick" '
                    f'text-anchor="end">{_number(value)}</text>')
    span = x_high - x_low
    ticks = [(x_low, "start"), (x_low + span / 2, "middle"), (x_high, "end")] if span \
        else [(x_low, "middle")]
    for x, anchor in ticks:
        body.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 15}" class="tick" '
                    f'text-anchor="{anchor}">{utc(x, seconds=span < 3600)[11:]}</text>')
    for level, name in ((threshold, "threshold"), (reference, "reference")):
        if level is not None:
            body.append(f'<polyline class="level" points="{at(x_low, level)} '
                        f'{at(x_high, level)}"><title>{name} {_number(level)}</title></polyline>')
    for ts, text in markers:
        if x_low <= ts <= x_high:
            body.append(f'<polyline class="marker" points="{at(ts, y_high)} {at(ts, y_low)}" '
                        f'stroke="{ALERT_COLOR}"><title>{escape(text)}</title></polyline>')
    legend = []
    for number, (name, line) in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        legend.append((name, color))
        body.append(f'<polyline class="line" fill="none" stroke="{color}" points="'
                    + " ".join(at(x, y) for x, y in line) + f'"><title>{escape(name)}</title>'
                    "</polyline>")
    body += _legend(legend, HEIGHT - 4)
    if y_label:
        body.append(f'<text x="{LEFT}" y="{TOP - 3}" class="tick">{escape(y_label)}</text>')
    return _svg(kind, HEIGHT, body, width=width, points=len(points), series=len(series))
