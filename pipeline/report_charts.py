"""Chart geometry for the report: numbers in, shapes out.

Each builder returns a :class:`Chart` -- plain rectangles, lines and text labels in
SVG user units. The ``svg`` macro in ``templates/_macros.html.j2`` draws them, with
every label and tooltip escaped by Jinja2's autoescaping; no markup is built here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = ""


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"  # start | middle | end
    cls: str = ""


@dataclass
class Chart:
    width: float
    height: float
    title: str
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    cls: str = "chart"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def fmt_number(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return f"{int(round(value)):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:g}"


class _YScale:
    """Counts to heights: linear, or logarithmic (log10(1 + count)) when a few bars
    would otherwise flatten all the others."""

    def __init__(self, values: list[float], top: float, plot_h: float):
        nonzero = sorted(v for v in values if v > 0)
        y_max = max(nonzero + [1])
        median = nonzero[len(nonzero) // 2] if nonzero else 1
        self.log = y_max > 10 * median and y_max >= 100
        if self.log:
            self.ticks = [0] + [10 ** k for k in range(1, math.ceil(math.log10(y_max)) + 1)]
        else:
            self.ticks = nice_ticks(0, y_max, 4)
        self.top_value = self._f(max(self.ticks[-1], y_max))
        self.top, self.plot_h = top, plot_h

    def _f(self, value: float) -> float:
        return math.log10(1 + value) if self.log else value

    def __call__(self, value: float) -> float:
        return self.top + self.plot_h - self._f(value) / self.top_value * self.plot_h

    def draw_axis(self, chart: "Chart", left: float, right: float) -> None:
        for tick in self.ticks:
            chart.lines.append(Line(left, self(tick), right, self(tick), "grid"))
            chart.labels.append(Label(left - 6, self(tick) + 4, fmt_number(tick), "end", "axis"))


def _legend(chart: Chart, items: list[tuple[str, str]], x: float, y: float) -> None:
    for name, cls in items:
        chart.rects.append(Rect(x, y - 9, 10, 10, cls))
        chart.labels.append(Label(x + 14, y, name, cls="legend"))
        x += 22 + 7 * len(name)


def histogram(edges: list[float], series: list[tuple[str, str, list[int]]], markers: list[tuple[float, str, str]],
              title: str, x_label: str, width: int = 720, height: int = 280) -> Chart:
    """Histogram. ``edges`` has one more value than each series' counts; ``series``
    is ``[(name, css class, counts)]``, stacked on a linear scale and side by side
    on a log scale; ``markers`` draws vertical lines ``[(x value, label, css class)]``
    (thresholds)."""
    chart = Chart(width, height, title)
    left, right, bottom = 56, 16, 40
    top = 30 + 14 * len(markers)
    plot_w, plot_h = width - left - right, height - top - bottom
    bins = len(edges) - 1
    totals = [sum(s[2][i] for s in series) for i in range(bins)]
    x_lo, x_hi = edges[0], edges[-1]

    def sx(value: float) -> float:
        return left + (value - x_lo) / (x_hi - x_lo) * plot_w if x_hi > x_lo else left

    sy = _YScale(totals, top, plot_h)
    if sy.log:
        sy = _YScale([c for _, _, counts in series for c in counts], top, plot_h)
    sy.draw_axis(chart, left, left + plot_w)
    for i in range(bins):
        base = 0
        x0, x1 = sx(edges[i]), sx(edges[i + 1])
        slot = (x1 - x0 - 1) / (len(series) if sy.log else 1)
        for k, (name, cls, counts) in enumerate(series):
            count = counts[i]
            if count:
                x = x0 + 0.5 + (k * slot if sy.log else 0)
                low = 0 if sy.log else base
                chart.rects.append(Rect(x, sy(low + count), max(slot, 0.5), sy(low) - sy(low + count), cls,
                                        f"{name}: {count:,} with {fmt_number(edges[i])} to {fmt_number(edges[i + 1])}"))
            base += count
    chart.lines.append(Line(left, top + plot_h, left + plot_w, top + plot_h, "axis"))
    for tick in nice_ticks(x_lo, x_hi, 10):
        chart.lines.append(Line(sx(tick), top + plot_h, sx(tick), top + plot_h + 4, "axis"))
        chart.labels.append(Label(sx(tick), top + plot_h + 16, fmt_number(tick), "middle", "axis"))
    chart.labels.append(Label(left + plot_w / 2, height - 6, x_label + (" · counts on a log scale" if sy.log else ""),
                              "middle", "axis-title"))
    # Leftmost marker on the top row: each label runs right, above the lines to its right.
    shown = sorted((m for m in markers if x_lo <= m[0] <= x_hi), key=lambda m: m[0])
    for i, (value, text, cls) in enumerate(shown):
        y = 40 + 14 * i
        chart.lines.append(Line(sx(value), y - 4, sx(value), top + plot_h, cls))
        anchor = "end" if sx(value) > left + plot_w * 0.6 else "start"
        chart.labels.append(Label(sx(value) + (-4 if anchor == "end" else 4), y, text, anchor, cls))
    _legend(chart, [(name, cls) for name, cls, _ in series], left, 14)
    return chart


def column_chart(categories: list[str], values: list[int], title: str, x_label: str, classes: list[str] | None = None,
                 width: int = 480, height: int = 280) -> Chart:
    """Vertical bars, one per category, each labelled with its value (``classes``:
    one CSS class per bar, default ``bar``)."""
    chart = Chart(width, height, title)
    left, right, top, bottom = 56, 12, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(categories), 1)
    bar_w = max(min(slot * 0.8, 60), 1)
    sy = _YScale(values, top, plot_h)
    sy.draw_axis(chart, left, left + plot_w)
    every = max(1, math.ceil(len(categories) / 20))
    for i, (category, value) in enumerate(zip(categories, values)):
        x = left + i * slot + (slot - bar_w) / 2
        cls = classes[i] if classes else "bar"
        chart.rects.append(Rect(x, sy(value), bar_w, sy(0) - sy(value), cls, f"{category}: {value:,}"))
        if len(categories) <= 15 and value:
            chart.labels.append(Label(x + bar_w / 2, sy(value) - 4, f"{value:,}", "middle", "value"))
        last = len(categories) - 1
        if (i % every == 0 and last - i >= every) or i == last:
            chart.labels.append(Label(x + bar_w / 2, top + plot_h + 16, category, "middle", "axis"))
    chart.lines.append(Line(left, top + plot_h, left + plot_w, top + plot_h, "axis"))
    chart.labels.append(Label(left + plot_w / 2, height - 6, x_label + (" · log scale" if sy.log else ""),
                              "middle", "axis-title"))
    return chart


def bar_list(labels: list[str], values: list[float], title: str, cls: str = "bar", width: int = 680,
             label_width: int = 250, row: int = 20) -> Chart:
    """Horizontal bars, one row per label, each with its value at the end."""
    height = row * len(labels) + 12
    chart = Chart(width, height, title)
    plot_w = width - label_width - 80
    top = max(values + [1])
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 6 + i * row
        chart.labels.append(Label(label_width - 8, y + row * 0.65, label, "end", "axis"))
        w = value / top * plot_w if top else 0
        chart.rects.append(Rect(label_width, y + 3, max(w, 1), row - 6, cls, f"{label}: {fmt_number(value)}"))
        chart.labels.append(Label(label_width + w + 6, y + row * 0.65, fmt_number(value), "start", "value"))
    chart.lines.append(Line(label_width, 2, label_width, height - 4, "axis"))
    return chart


def waterfall(steps: list[tuple[str, float]], start: tuple[str, float], total: tuple[str, float],
              threshold: float | None, title: str, width: int = 640, label_width: int = 250, row: int = 17) -> Chart:
    """How a pair's match weight adds up: ``start`` (the prior) then each step in
    turn, ending at ``total``; a vertical line marks the match threshold."""
    rows = [start] + steps + [total]
    height = row * len(rows) + 24
    chart = Chart(width, height, title, cls="chart waterfall")
    plot_left, plot_w = label_width, width - label_width - 58
    cumulative = [start[1]]
    for _, value in steps:
        cumulative.append(cumulative[-1] + value)
    values = cumulative + [0.0, total[1]] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    if high - low < 1:
        high = low + 1

    def sx(value: float) -> float:
        return plot_left + (value - low) / (high - low) * plot_w

    bottom = row * len(rows) + 4
    for tick in nice_ticks(low, high, 6):
        chart.lines.append(Line(sx(tick), 2, sx(tick), bottom, "grid"))
        chart.labels.append(Label(sx(tick), bottom + 13, fmt_number(tick), "middle", "axis"))
    chart.lines.append(Line(sx(0), 2, sx(0), bottom, "zero"))
    if threshold is not None:
        chart.lines.append(Line(sx(threshold), 2, sx(threshold), bottom, "threshold-match"))
    previous = 0.0
    for i, (label, value) in enumerate(rows):
        y = 2 + i * row
        if i == 0:
            a, b, cls = 0.0, value, "prior"
        elif i == len(rows) - 1:
            a, b, cls = 0.0, value, "total"
        else:
            a, b = previous, previous + value
            cls = "pos" if value > 0 else "neg" if value < 0 else "flat"
        previous = b if i < len(rows) - 1 else previous
        x0, x1 = sorted((sx(a), sx(b)))
        chart.rects.append(Rect(x0, y + 2, max(x1 - x0, 1), row - 5, cls))
        chart.labels.append(Label(label_width - 8, y + row * 0.7, label, "end", "axis" if 0 < i < len(rows) - 1 else "axis-title"))
        chart.labels.append(Label(width - 4, y + row * 0.7, f"{value:+.2f}" if 0 < i < len(rows) - 1 else f"{value:.2f}",
                                  "end", "value"))
    return chart


def weight_bar(weight: float | None, scale: float, width: int = 180, height: int = 14) -> Chart:
    """A small diverging bar for one model level: right of centre for evidence for
    a match, left for evidence against; ``scale`` is the largest |weight| shown."""
    chart = Chart(width, height, f"weight {weight:+.2f}" if weight is not None else "no weight", cls="chart mini")
    middle = width / 2
    chart.lines.append(Line(middle, 0, middle, height, "zero"))
    if weight is not None and scale > 0:
        w = max(min(abs(weight), scale), 0) / scale * (width / 2 - 2)
        chart.rects.append(Rect(middle if weight >= 0 else middle - w, 2, max(w, 1), height - 4, "pos" if weight >= 0 else "neg"))
    return chart
