"""The page in a real headless Chromium (Debian's), driven by Playwright: every tab, an upload, screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def page(app_server):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run scripts/setup.sh dev (make test does).")
    from playwright.sync_api import sync_playwright

    url, _ = app_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(url)
        pg.wait_for_selector("#tab-about", state="attached")
        yield pg
        browser.close()


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()
    page.wait_for_timeout(300)


def test_every_tab_opens(page, artifacts_dir):
    import tabs

    assert "3D Deep Learning Studio" in page.title()
    for key, title in tabs.TABS:
        open_tab(page, title)
        assert page.locator(f"#tab-{key}").is_visible(), title
        page.screenshot(path=str(artifacts_dir / f"tab-{key}.png"))
    open_tab(page, "About")
    assert page.locator("#health-table").is_visible()
    assert "load and run" in page.locator("#health-table").inner_text()


def test_inspect_upload_shows_mesh(page, artifacts_dir):
    open_tab(page, "Inspect")
    upload = page.locator("#tab-inspect input[type=file]").first
    upload.set_input_files([str(ROOT / "assets" / "torus_binary.ply")])
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Inspect", exact=True).click()
    page.wait_for_selector(".studio-progress[data-state=done]", timeout=120_000)
    canvas = page.locator("#inspect-model3d canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(2500)  # let the viewer load the GLB and draw
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    shot = artifacts_dir / "inspect-model3d.png"
    canvas.screenshot(path=str(shot))
    page.screenshot(path=str(artifacts_dir / "inspect.png"), full_page=True)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    # The viewer's clear colour fills the background; a drawn mesh adds many other colours.
    background = np.array([237, 237, 242])
    differs = np.abs(pixels - background).sum(axis=1) > 30
    assert differs.mean() > 0.02, "the Model3D canvas shows no mesh"
    assert (
        "No warnings" in page.locator("#inspect-warnings").inner_text()
        or page.locator("#inspect-warnings").is_visible()
    )
