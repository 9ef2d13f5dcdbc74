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
        "runs_list": "The visitor's runs, filtered by pipeline and status: table, metric names, thumbnails.",
        "runs_plot": "Metrics across the listed runs, each on its own axis; runs labelled by pipeline and time.",
        "runs_bundle": "One of the visitor's runs as a zip: config.json, metrics.csv and its artifacts.",
        "runs_open": "Reopen one of the visitor's runs: its pictures, video, mesh and record.",
    },
)


def all_tabs() -> list[Tab]:
    """Every tab in display order."""
    return [ABOUT, *capability_tabs(), RUNS]


TABS: tuple[tuple[str, str], ...] = tuple((tab.key, tab.title) for tab in all_tabs())
"""(module key, title) of every tab, in display order."""


def load(key: str) -> ModuleType:
    return importlib.import_module(f"tabs.{key}")
