"""The app's tabs, one module each: About first, then one tab per capability in the registry's order, then Runs."""

from __future__ import annotations

import importlib
from types import ModuleType

from pipelines import Tab, capability_tabs

ABOUT = Tab(
    "about", "Start here", {"health": "What this installation can do: device, versions, compiled ops, optional files."}
)
RUNS = Tab(
    "runs",
    "Runs",
    {
        "runs_list": "The visitor's runs, filtered by pipeline and status, and the metric names they logged.",
        "runs_plot": "One metric across the listed runs.",
        "runs_bundle": "A run as a zip: config.json, metrics.csv and its artifacts.",
    },
)


def all_tabs() -> list[Tab]:
    """Every tab in display order."""
    return [ABOUT, *capability_tabs(), RUNS]


TABS: tuple[tuple[str, str], ...] = tuple((tab.key, tab.title) for tab in all_tabs())
"""(module key, title) of every tab, in display order."""


def load(key: str) -> ModuleType:
    return importlib.import_module(f"tabs.{key}")
