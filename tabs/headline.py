"""The result card a run panel shows when a run ends: the pipeline's headline numbers (its module's `HEADLINE`) with
units and 3 significant figures, the wall time, and the final metrics as a table instead of raw JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pipelines
from pipelines.core.headline import Headline, headline_parts, significant

TABLE_HEADERS = ["metric", "value"]
"""The metrics table's columns."""


def pipeline_of(run_id: str) -> str | None:
    """The registry key inside a run id ("20261124-233015-mesh-fit-3fa2c1" → "mesh-fit"); None when it is not one."""
    parts = str(run_id).split("-")
    if len(parts) < 4:
        return None
    name = "-".join(parts[2:-1])
    return name if name in pipelines.REGISTRY else None


def headlines_of(name: str | None) -> tuple[Headline, ...]:
    """The `HEADLINE` a registered pipeline module declares (empty when it declares none or is unknown)."""
    if not name or name.replace("_", "-") not in pipelines.REGISTRY:
        return ()
    return tuple(getattr(pipelines.get(name), "HEADLINE", ()))


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries of a metrics dict that are numbers (the run id and text are left out)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def card_html(metrics: Mapping[str, Any] | None, name: str | None = None, elapsed_s: float | None = None) -> str:
    """The headline card: "Held-out PSNR **31.1 dB** (from 17.9 dB) · 15 s"; "" when there is nothing to show.

    `name` is the pipeline's registry key (read from the run id when None)."""
    if not metrics:
        return ""
    name = name or pipeline_of(str(metrics.get("run_id", "")))
    return parts_html(headline_parts(numeric(metrics), headlines_of(name)), elapsed_s)


def parts_html(parts: list[tuple[str, str, str]], elapsed_s: float | None = None) -> str:
    """The card for (label, value with unit, "from …" or "") parts, with an optional wall time; "" without parts.
    For results that are not recorded runs (a single render), which still deserve a headline."""
    if not parts:
        return ""
    items = "".join(
        f'<span class="studio-headline-item"><span class="studio-headline-label">{html.escape(label)}</span> '
        f'<b class="studio-headline-value">{html.escape(value)}</b>'
        + (f' <span class="studio-headline-from">({html.escape(start)})</span>' if start else "")
        + "</span>"
        for label, value, start in parts
    )
    wall = "" if elapsed_s is None else f'<span class="studio-headline-time">{html.escape(seconds(elapsed_s))}</span>'
    return f'<div class="studio-headline">{items}{wall}</div>'


def seconds(value: float) -> str:
    """A wall time for a person: "0.8 s", "15 s", "2.5 min"."""
    if value < 10:
        return f"{significant(value, 2)} s"
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


def metrics_rows(metrics: Mapping[str, Any] | None) -> list[list[str]]:
    """The final metrics as [name, value] rows with 3 significant figures (the run id first)."""
    if not metrics:
        return []
    rows = [["run", str(metrics["run_id"])]] if "run_id" in metrics else []
    for key, value in metrics.items():
        if key == "run_id":
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append([key.replace("_", " "), significant(float(value))])
        else:
            rows.append([key.replace("_", " "), str(value)])
    return rows


def write_metrics_json(metrics: Mapping[str, Any], folder: Path | None) -> Path | None:
    """The final metrics as `metrics.json` in the run's folder (for the downloads); None without a folder."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.json"
    path.write_text(json.dumps(dict(metrics), indent=2, default=str))
    return path
