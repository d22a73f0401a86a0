"""A stand-in for Grafana's panel rendering, because Grafana cannot run here: a mock, named
as one.

It lays a dashboard's panels out on Grafana's 24-column grid (``gridPos``) and draws what
each panel's queries returned from a real InfluxDB: time series as lines, stats as the
last value, tables as rows, geomaps as points on a blank plane. It is how the README's
dashboard picture is made by the tests, and every picture says that it is this stand-in,
not Grafana. Not modelled: field overrides, thresholds and colours, units, legends'
calculations, transformations, links.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

COLUMN_PX = 64
ROW_PX = 30
GAP_PX = 8
PALETTE = ("#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#ff9830")

_COORDINATE_COLUMNS = {
    "lat": "lat",
    "latitude": "lat",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
}

Series = dict[str, Any]
"""One series as InfluxDB's ``/query`` answers it: name, tags, columns, values."""


@dataclass
class PanelData:
    """What a panel's targets returned, and what the picture drew from it."""

    title: str
    kind: str
    series: list[Series] = field(default_factory=list)
    drawn_points: int = 0


@dataclass
class Picture:
    html: str
    panels: list[PanelData]


def _label(series: Series, column: str) -> str:
    tags = series.get("tags") or {}
    parts = [f"{v}" for v in tags.values() if v]
    name = " ".join(parts) if parts else str(series.get("name", ""))
    return f"{name} {column}".strip() if column != "value" and column != "mean" else name


def _numeric_columns(series: Series) -> list[int]:
    columns: list[str] = series.get("columns", [])
    rows: list[list[Any]] = series.get("values", [])
    numeric = []
    for index, _ in enumerate(columns):
        if index == 0:
            continue
        if any(isinstance(r[index], int | float) and not isinstance(r[index], bool) for r in rows):
            numeric.append(index)
    return numeric


def _time(value: Any) -> float:
    """Seconds since the epoch from InfluxDB's epoch=ns integers or RFC 3339 text."""
    if isinstance(value, int | float):
        return float(value) / 1e9 if abs(value) > 1e14 else float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _timeseries(data: PanelData, width: int, height: int) -> str:
    lines: list[tuple[str, list[tuple[float, float]]]] = []
    for series in data.series:
        for column in _numeric_columns(series):
            points = [
                (_time(row[0]), float(row[column]))
                for row in series["values"]
                if isinstance(row[column], int | float) and math.isfinite(row[column])
            ]
            if points:
                lines.append((_label(series, series["columns"][column]), points))
    if not lines:
        return '<div class="empty">No data</div>'
    xs = [x for _, points in lines for x, _ in points]
    ys = [y for _, points in lines for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    left, bottom, legend = 48, 18, 18 * min(len(lines), 4)
    plot_w, plot_h = width - left - 8, height - bottom - legend - 6
    parts = [f'<svg width="{width}" height="{height - legend}">']
    for fraction in (0.0, 0.5, 1.0):
        y = 4 + plot_h * (1 - fraction)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">')
        parts.append(f"{y0 + (y1 - y0) * fraction:.4g}</text>")
    for when, anchor, x in ((x0, "start", left), (x1, "end", width - 8)):
        stamp = datetime.fromtimestamp(when, UTC).strftime("%H:%M")
        parts.append(
            f'<text x="{x}" y="{height - legend - 4}" class="axis" text-anchor="{anchor}">'
        )
        parts.append(f"{stamp}</text>")
    for index, (_, points) in enumerate(lines):
        coords = " ".join(
            f"{left + plot_w * (x - x0) / (x1 - x0):.1f},"
            f"{4 + plot_h * (1 - (y - y0) / (y1 - y0)):.1f}"
            for x, y in points
        )
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<polyline points="{coords}" stroke="{colour}" class="line"/>')
        data.drawn_points += len(points)
    parts.append("</svg>")
    names = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{html.escape(name)}</span>'
        for i, (name, _) in enumerate(lines[:12])
    )
    parts.append(f'<div class="legend">{names}</div>')
    return "".join(parts)


def _stat(data: PanelData) -> str:
    values: list[tuple[str, float]] = []
    for series in data.series:
        for column in _numeric_columns(series):
            last = next(
                (r[column] for r in reversed(series["values"]) if r[column] is not None), None
            )
            if last is not None:
                values.append((_label(series, series["columns"][column]), float(last)))
    if not values:
        return '<div class="empty">No data</div>'
    data.drawn_points += len(values)
    cells = "".join(
        f'<div class="stat"><b style="color:{PALETTE[i % len(PALETTE)]}">{v:.4g}</b>'
        f"<small>{html.escape(name)}</small></div>"
        for i, (name, v) in enumerate(values[:8])
    )
    return f'<div class="stats">{cells}</div>'


def _table(data: PanelData) -> str:
    rows: list[str] = []
    header = ""
    for series in data.series:
        tags = series.get("tags") or {}
        columns = [*tags, *series.get("columns", [])]
        header = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        for row in series.get("values", [])[:12]:
            cells = [*tags.values(), _clock(row[0]), *row[1:]]
            rows.append("".join(f"<td>{html.escape(_cell(c))}</td>" for c in cells))
            data.drawn_points += 1
    if not rows:
        return '<div class="empty">No data</div>'
    body = "".join(f"<tr>{r}</tr>" for r in rows[:12])
    return f"<table><tr>{header}</tr>{body}</table>"


def _clock(value: Any) -> str:
    return datetime.fromtimestamp(_time(value), UTC).strftime("%H:%M:%S")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _geomap(data: PanelData, width: int, height: int) -> str:
    # Latitude and longitude may come from one query or from two joined on their tags (as
    # a "join by field" transformation does in Grafana): keyed by tags, last value each.
    coordinates: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}
    for series in data.series:
        key = tuple(sorted((series.get("tags") or {}).items()))
        columns = [str(c).lower() for c in series.get("columns", [])]
        for index, column in enumerate(columns):
            axis = _COORDINATE_COLUMNS.get(column)
            values = [r[index] for r in series["values"] if r[index] is not None]
            if axis and values:
                coordinates.setdefault(key, {})[axis] = float(values[-1])
    points = [(c["lon"], c["lat"]) for c in coordinates.values() if {"lat", "lon"} <= set(c)]
    if not points:
        return '<div class="empty">No data</div>'
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1e-3, (y1 - y0) or 1e-3
    dots = "".join(
        f'<circle cx="{12 + (width - 24) * (x - x0) / span_x:.1f}" '
        f'cy="{12 + (height - 24) * (1 - (y - y0) / span_y):.1f}" r="4" fill="#f2cc0c"/>'
        for x, y in points
    )
    data.drawn_points += len(points)
    return f'<svg width="{width}" height="{height}" class="map">{dots}</svg>'


def render(
    dashboard: Mapping[str, Any],
    results: Mapping[int, Sequence[Series]],
    *,
    subtitle: str,
) -> Picture:
    """The dashboard as a page; ``results[panel_id]`` is what the panel's queries returned."""
    drawn: list[PanelData] = []
    blocks: list[str] = []
    bottom = 0
    for panel in _all_panels(dashboard):
        grid = panel.get("gridPos", {})
        x, y, w, h = (int(grid.get(k, 0)) for k in ("x", "y", "w", "h"))
        left, top = x * COLUMN_PX + GAP_PX, y * ROW_PX + GAP_PX
        width, height = w * COLUMN_PX - GAP_PX, h * ROW_PX - GAP_PX
        bottom = max(bottom, top + height)
        kind = str(panel.get("type", ""))
        title = html.escape(str(panel.get("title", "")))
        style = f"left:{left}px;top:{top}px;width:{width}px;height:{height}px"
        if kind == "row":
            blocks.append(f'<div class="row" style="{style}">{title}</div>')
            continue
        data = PanelData(str(panel.get("title", "")), kind, list(results.get(panel["id"], [])))
        inner_h = height - 28
        if kind == "timeseries":
            body = _timeseries(data, width - 12, inner_h)
        elif kind in ("stat", "gauge", "bargauge"):
            body = _stat(data)
        elif kind == "table":
            body = _table(data)
        elif kind == "geomap":
            body = _geomap(data, width - 12, inner_h)
        elif kind == "text":
            content = str(panel.get("options", {}).get("content", ""))
            body = f'<div class="text">{html.escape(content)}</div>'
        else:
            body = f'<div class="empty">{html.escape(kind)} panel: not drawn by the stand-in</div>'
        drawn.append(data)
        blocks.append(f'<div class="panel" style="{style}"><h3>{title}</h3>{body}</div>')
    title = html.escape(str(dashboard.get("title", "")))
    page = _PAGE.format(
        title=title,
        subtitle=html.escape(subtitle),
        width=24 * COLUMN_PX + GAP_PX,
        height=bottom + GAP_PX,
        panels="".join(blocks),
    )
    return Picture(page, drawn)


def _all_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif}}
header{{padding:10px 12px;border-bottom:1px solid #2c3235}}
header b{{font-size:16px;color:#fff}} header span{{margin-left:12px;color:#8e8e8e}}
.board{{position:relative;width:{width}px;height:{height}px}}
.panel{{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:2px;
padding:4px 6px;box-sizing:border-box;overflow:hidden}}
.panel h3{{margin:0 0 6px;font-size:12px;font-weight:500;color:#d8d9da}}
.row{{position:absolute;font-size:14px;font-weight:500;color:#d8d9da;padding:6px 2px}}
.grid{{stroke:#2c3235;stroke-width:1}} .axis{{fill:#8e8e8e;font-size:10px}}
.line{{fill:none;stroke-width:1.6}}
.legend span{{margin-right:10px;white-space:nowrap}}
.legend i{{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}}
.stats{{display:flex;flex-wrap:wrap;gap:6px}}
.stat{{flex:1;min-width:80px;text-align:center}} .stat b{{display:block;font-size:28px}}
.stat small{{color:#8e8e8e}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:2px 6px;
border-bottom:1px solid #2c3235;white-space:nowrap}} th{{color:#6e9fff}}
.empty{{color:#8e8e8e;padding-top:20px;text-align:center}}
.map{{background:#1f2a33}}
</style></head><body><header><b>{title}</b><span>{subtitle}</span></header>
<div class="board">{panels}</div></body></html>"""
