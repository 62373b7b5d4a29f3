"""Inline SVG charts for the gate review pages, drawn on the server from the evidence.

No script, no external resource (fonts, images, stylesheets): the SVG is part of the page, so
the page's Content-Security-Policy stays ``default-src 'none'``. Every label from evidence
goes through :func:`html.escape`; every coordinate and value is a ``float`` computed here
(a value that is not a finite number is dropped, never written into the markup). Colours
come from the fixed :data:`TONES` table.

Builders return ``""`` when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 700
LABEL_W = 190
VALUE_W = 200
ROW_H = 22
TOP = 30
MAX_ROWS = 20
MAX_LABEL = 28
TONES = {
    "good": "#2f855a",
    "bad": "#c53030",
    "neutral": "#718096",
    "info": "#3182ce",
    "warn": "#b7791f",
}
FONT = 'font-family="system-ui,sans-serif" font-size="12"'


def number(value: Any) -> float | None:
    """A finite float, or None (booleans and non-numbers are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def short(value: float, signed: bool = False) -> str:
    """A number rounded for people: 3 significant digits, thousands separated."""
    sign = "+" if signed and value > 0 else ""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{sign}{value:,.0f}"
    if abs(value) < 0.001:
        return f"{sign}{value:.2e}"
    return f"{sign}{value:.3g}"


def _label(text: Any) -> str:
    raw = str(text)
    cut = raw if len(raw) <= MAX_LABEL else raw[: MAX_LABEL - 1] + "…"
    return escape(cut, quote=True)


def _svg(title: str, height: float, body: str, caption: str = "") -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(title, quote=True)}">'
        f"<title>{escape(title)}</title>"
        f'<text x="0" y="16" {FONT} font-weight="600" fill="#1a202c">{escape(title)}</text>'
    )
    note = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart">{head}{body}</svg>{note}</figure>'


@dataclass(frozen=True)
class Scale:
    """Maps values of ``[low, high]`` onto the plot's x range."""

    low: float
    high: float
    x0: float = LABEL_W
    x1: float = WIDTH - VALUE_W

    @classmethod
    def around(cls, values: Sequence[float], include_zero: bool = True) -> Scale:
        low, high = min(values), max(values)
        if include_zero:
            low, high = min(low, 0.0), max(high, 0.0)
        if high - low <= 0:
            high, low = high + 1.0, low - (1.0 if low < 0 else 0.0)
        pad = (high - low) * 0.05
        return cls(low - pad if low < 0 else low, high + pad)

    def x(self, value: float) -> float:
        return self.x0 + (value - self.low) / (self.high - self.low) * (self.x1 - self.x0)


def _row_label(y: float, text: Any) -> str:
    return (
        f'<text x="{LABEL_W - 8}" y="{y + 4:.1f}" text-anchor="end" {FONT} '
        f'fill="#2d3748">{_label(text)}</text>'
    )


def _value_text(y: float, text: str) -> str:
    x = WIDTH - VALUE_W + 8
    return f'<text x="{x}" y="{y + 4:.1f}" {FONT} fill="#4a5568">{escape(text)}</text>'


def _vline(x: float, top: float, bottom: float, colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
        f'stroke="{colour}" stroke-width="1"{dash}/>'
    )


def bars(
    title: str,
    rows: Sequence[tuple[Any, Any, str]],
    *,
    threshold: Any = None,
    threshold_label: str = "threshold",
    percent: bool = False,
    caption: str = "",
) -> str:
    """Horizontal bars ``(label, value, tone)``, optionally with a dashed threshold line."""
    kept = [(label, v, tone) for label, value, tone in rows if (v := number(value)) is not None]
    kept = kept[:MAX_ROWS]
    if not kept:
        return ""
    limit = number(threshold)
    scale = Scale.around([v for _, v, _ in kept] + ([limit] if limit is not None else []))
    height = TOP + ROW_H * len(kept) + 18
    parts = []
    for index, (label, value, tone) in enumerate(kept):
        y = TOP + index * ROW_H + ROW_H / 2
        x0, x1 = sorted((scale.x(0.0), scale.x(value)))
        colour = TONES.get(tone, TONES["neutral"])
        parts.append(_row_label(y, label))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y - 7:.1f}" width="{max(x1 - x0, 1.0):.1f}" height="14" '
            f'fill="{colour}" rx="2"/>'
        )
        parts.append(_value_text(y, f"{value:.1%}" if percent else short(value)))
    bottom = TOP + ROW_H * len(kept)
    parts.append(_vline(scale.x(0.0), TOP - 4, bottom, "#a0aec0"))
    if limit is not None:
        x = scale.x(limit)
        parts.append(_vline(x, TOP - 4, bottom, TONES["bad"], dashed=True))
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle" {FONT} '
            f'fill="{TONES["bad"]}">{escape(threshold_label)} {escape(short(limit))}</text>'
        )
    return _svg(title, height, "".join(parts), caption)


def intervals(
    title: str,
    rows: Sequence[tuple[Any, Any, Any, Any, str]],
    *,
    percent: bool = False,
    caption: str = "",
) -> str:
    """Points with their intervals ``(label, value, low, high, tone)`` around a zero line."""
    kept = []
    for label, value, low, high, tone in rows:
        point, lo, hi = number(value), number(low), number(high)
        if point is None:
            continue
        lo = point if lo is None else lo
        hi = point if hi is None else hi
        kept.append((label, point, lo, hi, tone))
    kept = kept[:MAX_ROWS]
    if not kept:
        return ""
    scale = Scale.around([v for row in kept for v in row[1:4]])
    height = TOP + ROW_H * len(kept) + 8
    parts = []
    for index, (label, point, low, high, tone) in enumerate(kept):
        y = TOP + index * ROW_H + ROW_H / 2
        colour = TONES.get(tone, TONES["neutral"])
        x_low, x_high, x = scale.x(low), scale.x(high), scale.x(point)
        parts.append(_row_label(y, label))
        parts.append(
            f'<line x1="{x_low:.1f}" y1="{y:.1f}" x2="{x_high:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        for end in (x_low, x_high):
            parts.append(_vline(end, y - 5, y + 5, colour))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')

        def text(v: float) -> str:
            return f"{v:+.1%}" if percent else short(v, signed=True)

        interval = f" [{text(low)}, {text(high)}]" if (low, high) != (point, point) else ""
        parts.append(_value_text(y, text(point) + interval))
    parts.append(_vline(scale.x(0.0), TOP - 4, TOP + ROW_H * len(kept), "#a0aec0"))
    return _svg(title, height, "".join(parts), caption)


def lines(
    title: str,
    points: Sequence[tuple[Any, Any]],
    *,
    tone: str = "info",
    percent: bool = False,
    caption: str = "",
) -> str:
    """One series over time ``(x label, value)`` as a polyline with the first and last label."""
    kept = [(label, v) for label, value in points if (v := number(value)) is not None]
    if len(kept) < 2:
        return ""
    values = [v for _, v in kept]
    scale_y = Scale.around(values, include_zero=False)
    height, plot_top, plot_bottom = 160.0, float(TOP), 130.0
    x0, x1 = 60.0, float(WIDTH - 20)

    def xy(index: int, value: float) -> tuple[float, float]:
        x = x0 + index / (len(kept) - 1) * (x1 - x0)
        frac = (value - scale_y.low) / (scale_y.high - scale_y.low)
        return x, plot_bottom - frac * (plot_bottom - plot_top)

    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, (_, v) in enumerate(kept)))
    colour = TONES.get(tone, TONES["info"])

    def text(v: float) -> str:
        return f"{v:.1%}" if percent else short(v)

    parts = [
        f'<line x1="{x0}" y1="{plot_bottom}" x2="{x1}" y2="{plot_bottom}" stroke="#a0aec0"/>',
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>',
        f'<text x="{x0 - 6}" y="{plot_top + 4}" text-anchor="end" {FONT} fill="#4a5568">'
        f"{escape(text(scale_y.high))}</text>",
        f'<text x="{x0 - 6}" y="{plot_bottom + 4}" text-anchor="end" {FONT} fill="#4a5568">'
        f"{escape(text(scale_y.low))}</text>",
        f'<text x="{x0}" y="{plot_bottom + 18}" {FONT} fill="#4a5568">{_label(kept[0][0])}</text>',
        f'<text x="{x1}" y="{plot_bottom + 18}" text-anchor="end" {FONT} fill="#4a5568">'
        f"{_label(kept[-1][0])}</text>",
    ]
    return _svg(title, height, "".join(parts), caption)
