"""Headline metrics: the few numbers a person reads first after a run, declared by each pipeline module.

A pipeline module may define `HEADLINE: tuple[Headline, ...]`; the tab's result card and the Runs tab read it and
format the run's `Done.metrics` with `format_headline` ("Held-out PSNR 31.1 dB (from 17.9)").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Headline:
    """One headline number: the metric `key` in `Done.metrics`, its `label`, its `unit` ("dB", "°", "mm", "%",
    "s" or ""), and optionally `start_key`, the metric that holds the value before the work (shown as "from …")."""

    key: str
    label: str
    unit: str = ""
    start_key: str | None = None


def significant(value: float, digits: int = 3) -> str:
    """`value` with `digits` significant figures, without exponent for everyday magnitudes: 31.14 → "31.1",
    0.0004123 → "0.000412", 123456 → "123456", nan → "n/a"."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{round(value):d}" if abs(value) < 1e12 else f"{value:.{digits - 1}e}"
    if magnitude < -6:
        return f"{value:.{digits - 1}e}"
    decimals = digits - 1 - magnitude
    text = f"{value:.{decimals}f}"
    return text


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("°", "%") else f"{text} {unit}"


def headline_parts(metrics: Mapping[str, float], headlines: Iterable[Headline]) -> list[tuple[str, str, str]]:
    """(label, value with unit, "from …" or "") for each headline whose key is in `metrics`, in order."""
    parts = []
    for h in headlines:
        if h.key not in metrics:
            continue
        value = _with_unit(significant(float(metrics[h.key])), h.unit)
        start = ""
        if h.start_key and h.start_key in metrics:
            start = f"from {_with_unit(significant(float(metrics[h.start_key])), h.unit)}"
        parts.append((h.label, value, start))
    return parts


def format_headline(metrics: Mapping[str, float], headlines: Iterable[Headline]) -> str:
    """A one-line plain-text headline: "Held-out PSNR 31.1 dB (from 17.9 dB) · Pose error 0.04°"."""
    texts = [
        f"{label} {value}" + (f" ({start})" if start else "")
        for label, value, start in headline_parts(metrics, headlines)
    ]
    return " · ".join(texts)
