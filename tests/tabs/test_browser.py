"""The page in a real headless Chromium (Debian's), driven by Playwright: every tab, an upload, screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
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
    assert _canvas_shows_mesh(page, "#inspect-model3d", artifacts_dir / "inspect-model3d.png") > 0.02, (
        "the Model3D canvas shows no mesh"
    )
    page.screenshot(path=str(artifacts_dir / "inspect.png"), full_page=True)
    assert (
        "No warnings" in page.locator("#inspect-warnings").inner_text()
        or page.locator("#inspect-warnings").is_visible()
    )


def _canvas_shows_mesh(page, selector: str, shot: Path) -> float:
    """Fraction of the Model3D canvas that differs from the viewer's clear colour (a drawn mesh adds colours)."""
    from PIL import Image

    canvas = page.locator(f"{selector} canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(2500)  # let the viewer load the GLB and draw
    canvas.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    return float((np.abs(pixels - np.array([237, 237, 242])).sum(axis=1) > 30).mean())


def test_mesh_fitting_streams_and_shows_the_fitted_mesh(page, artifacts_dir):
    open_tab(page, "Mesh fitting")
    tab = page.locator("#tab-mesh_fit")
    tab.get_by_label("tiny").check()
    tab.get_by_role("button", name="Fit", exact=True).click()
    tab.locator(".studio-progress[data-state=done]").wait_for(timeout=120_000)
    assert "chamfer" in tab.inner_text().lower()
    assert _canvas_shows_mesh(page, "#mesh-fit-model3d", artifacts_dir / "mesh-fit-model3d.png") > 0.02
    page.screenshot(path=str(artifacts_dir / "mesh-fit.png"), full_page=True)


def test_pose_estimate_runs_in_the_page(page, artifacts_dir):
    open_tab(page, "Pose")
    tab = page.locator("#tab-pose")
    tab.get_by_label("tiny").first.check()
    tab.get_by_role("button", name="Estimate the pose", exact=True).click()
    tab.locator(".studio-progress[data-state=done]").first.wait_for(timeout=120_000)
    assert "error" in tab.inner_text().lower()
    page.screenshot(path=str(artifacts_dir / "pose.png"), full_page=True)


def test_volume_training_streams_and_shows_the_mesh(page, artifacts_dir):
    open_tab(page, "Volume")
    tab = page.locator("#tab-volume")
    tab.get_by_label("tiny").first.check()
    tab.get_by_role("button", name="Train", exact=True).click()
    tab.locator(".studio-progress[data-state=done]").wait_for(timeout=180_000)
    assert "psnr_heldout" in tab.inner_text()
    assert _canvas_shows_mesh(page, "#volume-model3d", artifacts_dir / "volume-model3d.png") > 0.02
    assert tab.locator("video").count() >= 1
    page.screenshot(path=str(artifacts_dir / "volume.png"), full_page=True)
