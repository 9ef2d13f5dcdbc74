"""Where the project's own files live: the shipped assets folder (procedural meshes, body model, checkpoints)."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
"""The repository's `assets/` folder: small procedural assets and shipped checkpoints with their model cards."""
