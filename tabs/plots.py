"""Plots that read well: losses and each kind of metric on their own subplot, legends clear of the titles, and log
axes labelled with real numbers (1, 2, 5 × 10^k) instead of Plotly's bare digits."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

METRIC_KINDS: tuple[tuple[str, str], ...] = (
    (r"psnr", "PSNR (dB)"),
    (r"iou|f1|precision|recall|within", "share (0–1)"),
    (r"_deg$|angle|rotation_error", "error (°)"),
    (r"_mm$", "error (mm)"),
    (r"_px$", "error (px)"),
    (r"dist$|distance", "distance"),
    (r"error$", "error"),
)
"""How a curve's name picks its subplot (the first pattern that matches); anything else is a loss."""
ROW_HEIGHT = 220
"""Pixels per subplot."""


def kind_of(name: str) -> str:
    """The subplot a curve belongs on: a metric kind from `METRIC_KINDS`, or "loss"."""
    low = name.lower()
    if "loss" in low:
        return "loss"
    for pattern, kind in METRIC_KINDS:
        if re.search(pattern, low):
            return kind
    return "loss"


def log_ticks(values: Iterable[float]) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis over `values`: 1, 2 and 5 × 10^k inside their range (only the
    decades when the range spans more than three of them), labelled like "0.02" or "1e-05"."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return [], []
    low, high = min(positive), max(positive)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1.0,) if last - first > 3 else (1.0, 2.0, 5.0)
    ticks = [m * 10.0**k for k in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if low / 1.0001 <= t <= high * 1.0001]
    if len(inside) < 2:  # a narrow range: the ends, rounded
        inside = sorted({float(f"{low:.2g}"), float(f"{high:.2g}")})
    return inside, [f"{t:g}" for t in inside]


def set_log_axis(fig: go.Figure, values: Sequence[float], row: int | None = None, col: int | None = None) -> None:
    """Make a y axis logarithmic with readable ticks for `values`."""
    ticks, labels = log_ticks(values)
    fig.update_yaxes(type="log", tickvals=ticks or None, ticktext=labels or None, row=row, col=col)


def readable_layout(fig: go.Figure, height: int, title: str = "") -> None:
    """The studio's plot layout: the legend in a row above the plot (clear of axis titles), tight margins."""
    fig.update_layout(
        title=dict(text=title, x=0, y=0.995, yanchor="top") if title else None,
        height=height,
        margin=dict(l=60, r=10, t=60 if title else 40, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0, font=dict(size=11)),
        hovermode="x unified",
    )


def curves_figure(history: dict[str, tuple[list[int], list[float]]], title: str = "") -> go.Figure:
    """One line per loss/metric name: losses together (log y when all positive), each metric kind on its own
    subplot below, sharing the step axis."""
    groups: dict[str, list[str]] = {}
    for name in history:
        groups.setdefault(kind_of(name), []).append(name)
    order = sorted(groups, key=lambda k: (k != "loss", k))
    if not order:
        fig = go.Figure()
        readable_layout(fig, ROW_HEIGHT, title)
        return fig
    fig = make_subplots(rows=len(order), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for row, kind in enumerate(order, start=1):
        values: list[float] = []
        for name in groups[kind]:
            steps, ys = history[name]
            fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines", name=name), row=row, col=1)
            values.extend(ys)
        fig.update_yaxes(title_text=kind, row=row, col=1)
        if kind == "loss" and values and all(v > 0 for v in values):
            set_log_axis(fig, values, row=row, col=1)
    fig.update_xaxes(title_text="step", row=len(order), col=1)
    readable_layout(fig, ROW_HEIGHT * len(order) + 60, title)
    return fig


CAMERA_COLOURS = {"start": "#888888", "true": "#2e9d5b", "estimated": "#e4572e"}
"""Colours of the named cameras in `cameras_figure` (others get Plotly's)."""


def frustum_lines(centre: Sequence[float], size: float = 0.35) -> tuple[list[float | None], ...]:
    """x, y, z line coordinates (None-separated) of a small pyramid for a camera at `centre` looking at the origin
    with +Y up: apex at the centre, base towards the origin."""
    c = np_vec(centre)
    forward = [-x / max(_norm(c), 1e-9) for x in c]
    up = (0.0, 1.0, 0.0) if abs(forward[1]) < 0.99 else (0.0, 0.0, 1.0)
    right = _unit(_cross(up, forward))
    true_up = _cross(forward, right)
    base = [c[i] + size * forward[i] for i in range(3)]
    corners = [
        [base[i] + sx * 0.6 * size * right[i] + sy * 0.45 * size * true_up[i] for i in range(3)]
        for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))
    ]
    xs: list[float | None] = []
    ys: list[float | None] = []
    zs: list[float | None] = []
    for a, b in [(c, k) for k in corners] + list(zip(corners, corners[1:] + corners[:1])):
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
        zs += [a[2], b[2], None]
    return xs, ys, zs


def cameras_figure(cameras: dict[str, Sequence[float]], title: str = "") -> go.Figure:
    """Named look-at cameras (centre positions) around an object at the origin, in 3D: a frustum each, a dashed
    line of sight to the origin, and the origin marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter3d(x=[0], y=[0], z=[0], mode="markers", marker=dict(size=6, color="black"), name="object"))
    for name, centre in cameras.items():
        colour = CAMERA_COLOURS.get(name)
        xs, ys, zs = frustum_lines(centre)
        fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color=colour, width=5), name=name))
        fig.add_trace(
            go.Scatter3d(
                x=[centre[0], 0],
                y=[centre[1], 0],
                z=[centre[2], 0],
                mode="lines",
                line=dict(color=colour, width=2, dash="dash"),
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.update_layout(scene=dict(aspectmode="data", xaxis_title="x", yaxis_title="y", zaxis_title="z"))
    readable_layout(fig, 420, title)
    fig.update_layout(hovermode="closest")
    return fig


def np_vec(v: Sequence[float]) -> list[float]:
    return [float(x) for x in v]


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _unit(v: Sequence[float]) -> list[float]:
    n = max(_norm(v), 1e-9)
    return [x / n for x in v]


def _cross(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
