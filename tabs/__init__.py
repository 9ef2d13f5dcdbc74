"""The app's tabs: one module each, registered here in display order (key, title)."""

from __future__ import annotations

import importlib
from types import ModuleType

TABS: tuple[tuple[str, str], ...] = (
    ("about", "About"),
    ("inspect", "Inspect"),
    ("shading", "Shading lab"),
    ("mesh_fit", "Mesh fitting"),
    ("pose", "Pose"),
    ("volume", "Volume"),
    ("nerf", "NeRF"),
    ("smpl", "SMPL"),
    ("runs", "Runs"),
)


def load(key: str) -> ModuleType:
    return importlib.import_module(f"tabs.{key}")
