"""Colours as users type them: '#rrggbb', 'rgb(r, g, b)' or three floats, to and from RGB in [0, 1]."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

Color = tuple[float, float, float]


def parse_color(value: Any, name: str = "colour") -> Color:
    """An RGB colour in [0, 1] from '#rrggbb', '#rgb', 'rgb(r, g, b)', 'rgba(r, g, b, a)' (0-255) or 3 floats."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("#"):
            digits = text[1:]
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            if len(digits) in (6, 8) and re.fullmatch(r"[0-9a-f]+", digits):
                return tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
        match = re.fullmatch(r"rgba?\(([^)]*)\)", text)
        if match:
            parts = [p.strip() for p in match.group(1).split(",")]
            try:
                rgb = [float(p) for p in parts[:3]]
            except ValueError:
                rgb = []
            if len(rgb) == 3 and all(0.0 <= c <= 255.0 for c in rgb):
                return tuple(c / 255.0 for c in rgb)  # type: ignore[return-value]
        raise ValueError(f"The {name} {value!r} is not a colour: use #rrggbb, rgb(r, g, b) or three numbers in [0, 1].")
    try:
        rgb = [float(c) for c in value]
    except (TypeError, ValueError):
        rgb = []
    if len(rgb) != 3 or not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in rgb):
        raise ValueError(f"The {name} must be three numbers in [0, 1] (or #rrggbb), got {value!r}.")
    return (rgb[0], rgb[1], rgb[2])


def color_hex(rgb: Sequence[float]) -> str:
    """'#rrggbb' for an RGB colour in [0, 1]."""
    return "#" + "".join(f"{round(min(1.0, max(0.0, float(c))) * 255):02x}" for c in rgb)
