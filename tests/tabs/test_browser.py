"""The page in a real headless Chromium (Debian's), driven by Playwright, in one page as a visitor would use it: Health
in its closed accordion; an upload reaches the 3D viewer; every preset on tiny; each start-here card and each other
tab's first example runs and shows a headline card (number and unit) beside a picture of 256 px or more; a past run
reopens in the Runs tab; then every tab, with its results, at 1400 and 800 px (no tab behind an overflow menu, no raw
JSON open, Stop idle, a screenshot of each for the README's tour)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import tabs
from tabs.showcase import cards_for

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
HEADLINE = re.compile(r"\d(\.\d+)?\s*(dB|mm|px|m|s|%|frames/s)\b|\d°")
"""A number with its unit, as the headline card shows it."""
MIN_PICTURE_PX = 256
WIDTHS = (1400, 800)
TOUR_MAX_HEIGHT = 2400
VIEWER_LOAD_MS = 1200
"""The tour's screenshots show the top of each page (results come first)."""


@pytest.fixture(scope="module")
def browser(app_server):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run scripts/setup.sh dev (make test does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, app_server):
    url, _ = app_server
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(60_000)
    pg.goto(url)
    pg.wait_for_selector("#tab-about", state="attached")
    yield pg
    pg.close()


def test_health_is_in_a_closed_accordion(page):
    open_tab(page, "about")
    assert not page.locator("#health-table").is_visible()
    page.get_by_text("Health: device, versions", exact=False).first.click()
    page.locator("#health-table").wait_for(state="visible")
    assert "load and run" in page.locator("#health-table").inner_text()
    page.get_by_text("Health: device, versions", exact=False).first.click()  # closed again, as a visitor finds it


def open_tab(page, key: str) -> None:
    page.locator(f"#tab-{key}-button").click()
    page.locator(f"#tab-{key}").wait_for(state="visible")
    page.wait_for_timeout(300)


def use_tiny_presets(page) -> None:
    """Every preset radio on tiny, so the examples finish in seconds (the cards keep the tab's preset)."""
    for key, _ in tabs.TABS:
        open_tab(page, key)
        for radio in page.locator(f"#tab-{key} input[type=radio][value=tiny]").all():
            if radio.is_visible():
                radio.check()
    open_tab(page, "about")


def largest_picture(page, key: str) -> tuple[float, float]:
    """(width, height) on screen of the largest visible image, video or canvas in the tab."""
    return tuple(
        page.evaluate(
            """(key) => {
              let best = [0, 0];
              for (const el of document.querySelectorAll(`#tab-${key} img, #tab-${key} video, #tab-${key} canvas`)) {
                const r = el.getBoundingClientRect();
                if (el.offsetParent !== null && r.width * r.height > best[0] * best[1]) best = [r.width, r.height];
              }
              return best;
            }""",
            key,
        )
    )


def clear_toasts(page) -> None:
    """Closes the error messages a previous test left, so they are not taken for this run's."""
    for button in page.locator(".toast-close").all():
        if button.is_visible():
            button.click()
    page.wait_for_timeout(300)


def status_text(page, key: str) -> str:
    """The text of the tab's first progress bar ("" before any)."""
    bar = page.locator(f"#tab-{key} .studio-progress").first
    return bar.inner_text() if bar.count() else ""


def check_result(page, key: str, artifacts_dir: Path, before: str = "", timeout_ms: int = 120_000) -> str:
    """Waits for the tab's run to finish with a status other than `before` (an error toast fails at once); checks
    the headline card and a big picture; returns the headline."""
    tab = page.locator(f"#tab-{key}")
    page.wait_for_function(
        """([key, before]) => {
          const bar = document.querySelector(`#tab-${key} .studio-progress`);
          const done = bar && bar.dataset.state === "done" && bar.innerText !== before;
          return done || document.querySelector(".toast-body.error") !== null;
        }""",
        arg=[key, before],
        timeout=timeout_ms,
    )
    error = page.locator(".toast-body.error").first
    if error.count() and error.is_visible():
        pytest.fail(f"{key}: the run failed: {error.inner_text()}")
    card = tab.locator(".studio-headline").first
    card.wait_for(state="visible", timeout=20_000)
    text = card.inner_text()
    assert HEADLINE.search(text), f"{key}: no number with a unit in the headline {text!r}"
    page.wait_for_timeout(1000)
    width, height = largest_picture(page, key)
    assert max(width, height) >= MIN_PICTURE_PX, f"{key}: the largest picture is {width:.0f}×{height:.0f} px"
    page.screenshot(path=str(artifacts_dir / f"result-{key}.png"), full_page=True)
    return text


@pytest.fixture(scope="module")
def tiny_page(page, artifacts_dir):
    (artifacts_dir / "start-here-headlines.txt").unlink(missing_ok=True)
    use_tiny_presets(page)
    return page


CARDS = cards_for([key for key, _ in tabs.TABS])


def test_there_are_start_here_cards():
    assert len(CARDS) >= 4


@pytest.mark.parametrize("card", CARDS, ids=[card.tab for card in CARDS])
def test_start_here_card_fills_and_runs_its_tab(tiny_page, artifacts_dir, card):
    page = tiny_page
    clear_toasts(page)
    open_tab(page, "about")
    page.locator(f"#start-{card.tab}").click()
    page.locator(f"#tab-{card.tab}").wait_for(state="visible", timeout=30_000)
    headline = check_result(page, card.tab, artifacts_dir)
    with (artifacts_dir / "start-here-headlines.txt").open("a") as out:
        out.write(f"{card.tab}: {headline}\n")


def test_inspect_upload_shows_mesh(page, artifacts_dir):
    """Before the examples fill the upload box: an uploaded torus reaches the viewer."""
    open_tab(page, "inspect")
    upload = page.locator("#tab-inspect input[type=file]").first
    upload.set_input_files([str(ROOT / "assets" / "torus_binary.ply")])
    page.wait_for_timeout(1000)
    page.locator("#inspect-run").click()
    page.wait_for_selector("#tab-inspect .studio-progress[data-state=done]", timeout=120_000)
    assert _canvas_shows_mesh(page, "#inspect-model3d", artifacts_dir / "inspect-model3d.png") > 0.02, (
        "the Model3D canvas shows no mesh"
    )


EXAMPLE_TABS = [key for key, _ in tabs.TABS if key not in {"about", "runs"} | {card.tab for card in CARDS}]
"""The tabs no card runs: their first example is clicked and run here."""


@pytest.mark.parametrize("key", EXAMPLE_TABS)
def test_first_example_runs(tiny_page, artifacts_dir, key):
    page = tiny_page
    clear_toasts(page)
    open_tab(page, key)
    page.locator(f"#{key}-examples .gallery-item, #{key}-examples tbody tr").first.click()
    page.wait_for_timeout(1500)
    before = status_text(page, key)
    page.locator(f"#{key}-run").click()
    if key == "shading":  # a render, not a recorded run: its card follows the render's info
        page.locator("#tab-shading .studio-headline").first.wait_for(state="visible", timeout=60_000)
        page.wait_for_timeout(1000)
        width, height = largest_picture(page, key)
        assert min(width, height) >= MIN_PICTURE_PX, f"the render is {width:.0f}×{height:.0f} px"
        page.screenshot(path=str(artifacts_dir / "result-shading.png"), full_page=True)
        return
    check_result(page, key, artifacts_dir, before)
    viewers = {"volume": "#volume-model3d", "mesh_fit": "#mesh-fit-model3d"}
    if key in viewers:
        shot = artifacts_dir / f"{key}-model3d.png"
        assert _canvas_shows_mesh(page, viewers[key], shot) > 0.02, f"{key}: the viewer shows no mesh"


def test_a_past_run_reopens_in_the_runs_tab(tiny_page, artifacts_dir):
    """After the runs above: the Runs tab lists them with thumbnails; clicking the latest (Volume's) reopens its
    pictures and its mesh in the viewer."""
    page = tiny_page
    open_tab(page, "runs")
    thumbs = page.locator("#runs-history .thumbnail-item")
    thumbs.first.wait_for(state="visible", timeout=30_000)
    thumbs.first.click()
    page.locator("#runs-pictures img").first.wait_for(state="visible", timeout=30_000)
    assert _canvas_shows_mesh(page, "#runs-mesh", artifacts_dir / "runs-mesh.png") > 0.02, "the run's mesh is not drawn"


@pytest.mark.parametrize("width", WIDTHS)
def test_tour_every_tab(tiny_page, artifacts_dir, width):
    """Every tab at `width` px after the runs above: no tab hidden behind an overflow menu, plots and viewers with a
    size, no raw JSON panel open, Stop idle, a screenshot (the top 2,400 px of the page)."""
    page = tiny_page
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(500)
    assert page.locator(".overflow-menu").count() == 0 or not page.locator(".overflow-menu").first.is_visible()
    json_open: list[str] = []
    for key, title in tabs.TABS:
        button = page.locator(f"#tab-{key}-button")
        assert button.is_visible(), f"the {title} tab is hidden at {width} px"
        open_tab(page, key)
        page.wait_for_timeout(300)
        if page.locator(f"#tab-{key} canvas").count():
            page.wait_for_timeout(VIEWER_LOAD_MS)  # a 3D viewer reloads its mesh when its tab is opened
        sizes = page.evaluate(
            """(key) => [...document.querySelectorAll(`#tab-${key} .js-plotly-plot, #tab-${key} canvas`)]
                .filter((el) => el.offsetParent !== null)
                .map((el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; })""",
            key,
        )
        assert all(w > 0 and h > 0 for w, h in sizes), f"{key} at {width} px: a plot or viewer has no size {sizes}"
        if width < 1000:  # narrow: the columns stack, so every progress bar spans the page
            bars = page.evaluate(
                """(key) => [...document.querySelectorAll(`#tab-${key} .studio-progress`)]
                    .filter((el) => el.offsetParent !== null).map((el) => el.getBoundingClientRect().width)""",
                key,
            )
            assert all(w >= 0.7 * width for w in bars), f"{key} at {width} px: columns side by side {bars}"
        open_json = page.evaluate(
            """(key) => [...document.querySelectorAll(`#tab-${key} .json-holder`)]
                .filter((el) => el.offsetParent !== null).length""",
            key,
        )
        if open_json:
            json_open.append(f"{key}: {open_json} raw JSON panel(s) open")
        idle_stops = page.evaluate(
            """(key) => [...document.querySelectorAll(`#tab-${key} .studio-stop`)]
                .filter((el) => el.offsetParent !== null)
                .map((el) => getComputedStyle(el).pointerEvents)""",
            key,
        )
        assert all(p == "none" for p in idle_stops), f"{key}: a Stop button takes clicks with no run going"
        page.evaluate("window.scrollTo(0, 0)")
        height = min(TOUR_MAX_HEIGHT, page.evaluate("document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": width, "height": height}
        page.screenshot(path=str(artifacts_dir / f"tour-{key}-{width}.png"), full_page=True, clip=clip)
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert not json_open, json_open


def _canvas_shows_mesh(page, selector: str, shot: Path) -> float:
    """Fraction of the Model3D canvas that differs from the viewer's clear colour (a drawn mesh adds colours)."""
    from PIL import Image

    canvas = page.locator(f"{selector} canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(2500)  # let the viewer load the GLB and draw
    canvas.screenshot(path=str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    return float((np.abs(pixels - np.array([237, 237, 242])).sum(axis=1) > 30).mean())
