"""The "Start here" cards as data: a title, the tab they open, a thumbnail, and how the card fills and runs that tab
(click the tab's first `gr.Examples` row, then its Run button, both found by elem_id).

A card whose tab is not registered is skipped, so cards for tabs still being built appear once the tab lands.
Every tab a card names must expose `#<tab>-examples` (its first `gr.Examples`, elem_id) and `#<tab>-run` (the button
that starts its main run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.paths import ASSETS_DIR

THUMBNAILS = ASSETS_DIR / "showcase"
"""Where the cards' thumbnails live (PNG, made by scripts/showcase_thumbnails.py)."""
MAX_CARDS = 6


@dataclass(frozen=True)
class Card:
    """One start-here card: what it shows and which tab it fills and runs."""

    title: str
    tab: str
    """The tab's key (its module `tabs.<tab>`, its DOM id `tab-<tab>`)."""
    blurb: str
    thumbnail: str
    """File name under `THUMBNAILS`."""
    examples_id: str = ""
    """elem_id of the gr.Examples whose first row fills the tab (default `<tab>-examples`)."""
    run_id: str = ""
    """elem_id of the button that runs it (default `<tab>-run`)."""

    @property
    def examples(self) -> str:
        return self.examples_id or f"{self.tab}-examples"

    @property
    def run(self) -> str:
        return self.run_id or f"{self.tab}-run"

    @property
    def thumbnail_path(self) -> Path | None:
        path = THUMBNAILS / self.thumbnail
        return path if path.is_file() else None


CARDS: tuple[Card, ...] = (
    Card("NeRF of a cow in about a minute", "nerf", "Train a radiance field on 40 views; orbit it.", "nerf.png"),
    Card(
        "Recover a camera pose in seconds",
        "pose",
        "Differentiable rendering turns a wrong camera into the right one.",
        "pose.png",
    ),
    Card("Pose a body", "smpl", "Shape and pose the SMPL-layout body; skinning weights as a heat map.", "smpl.png"),
    Card(
        "Generate a scene and move an object",
        "giraffe",
        "GIRAFFE composes objects as neural fields you can move.",
        "giraffe.png",
    ),
    Card("Image → mesh", "meshrcnn", "Mesh R-CNN predicts a mesh from one picture.", "meshrcnn.png"),
    Card("New views from one picture", "synsin", "SynSin moves the camera around a single image.", "synsin.png"),
    Card(
        "Fit a mesh to a scan", "mesh_fit", "Deform a sphere onto a pedestrian scan with chamfer loss.", "mesh_fit.png"
    ),
    Card("Voxels from 40 views", "volume", "A voxel grid learns the cow; held-out PSNR tells how well.", "volume.png"),
)
"""Every card, in the order they are shown (the first `MAX_CARDS` whose tab is registered)."""


def cards_for(tab_keys: set[str] | list[str] | tuple[str, ...]) -> list[Card]:
    """The cards to show for the registered tabs, at most `MAX_CARDS`, in `CARDS` order."""
    keys = set(tab_keys)
    return [card for card in CARDS if card.tab in keys][:MAX_CARDS]


def card_script(card: Card) -> str:
    """The card button's browser action: open the tab, click its first example row, wait for the inputs to fill,
    click Run. Each step waits (up to 20 s) for its element, since a tab's content is drawn when first opened."""
    names = json.dumps({"tab": card.tab, "examples": card.examples, "run": card.run})
    return f"""async () => {{
  const ids = {names};
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const find = async (selector, ms) => {{
    for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(100)) {{
      const el = document.querySelector(selector);
      if (el && el.offsetParent !== null) return el;
    }}
    return null;
  }};
  document.getElementById(`tab-${{ids.tab}}-button`)?.click();
  const row = await find(`#${{ids.examples}} .gallery-item, #${{ids.examples}} tbody tr, #${{ids.examples}} button`, 20000);
  if (row) {{ row.click(); await sleep(1500); }}
  const run = await find(`#${{ids.run}}`, 20000);
  run?.scrollIntoView({{block: "center"}});
  run?.click();
}}"""
