"""The Shading lab through the app: every endpoint called with gradio_client, and the tab driven in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from tests.tabs.test_browser import CHROMIUM, LAUNCH_ARGS

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
SMALL = {"image_size": 64}
APIS = {"render", "render_buffers", "render_compare", "rotations", "turntable", "shading_fit", "shading_points"}


def api_names(demo) -> set[str]:
    return {d.get("api_name") for d in demo.config["dependencies"] if d.get("api_name")}


def test_tab_builds_with_its_endpoints(tmp_path):
    import app

    demo = app.build_app(app.make_context(data_dir=tmp_path, device="cpu"))
    assert APIS <= api_names(demo)
    labels = {c.get("props", {}).get("label") for c in demo.config["components"]}
    assert "Shading lab" in labels


def as_dict(value):
    return value if isinstance(value, dict) else json.loads(value)


def read_image(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_render_endpoint(client):
    image, info = client.predict("torus", None, {**SMALL, "shader": "hard-flat"}, api_name="/render")
    pixels = read_image(image)
    assert pixels.shape == (64, 64, 3) and pixels.std() > 5
    info = as_dict(info)
    assert info["shader"] == "hard-flat" and info["memory_estimate_mib"] > 0 and info["faces"] > 1000


def test_render_an_uploaded_textured_obj(client):
    from gradio_client import handle_file

    files = [
        handle_file(str(ASSETS / name)) for name in ("textured_cube.obj", "textured_cube.mtl", "textured_cube.png")
    ]
    image, info = client.predict(None, files, SMALL, api_name="/render")
    assert as_dict(info)["faces"] == 12
    assert read_image(image).std() > 5


def test_render_refuses_an_oversized_request(client):
    with pytest.raises(AppError, match="MiB"):
        client.predict(
            "ico-sphere", None, {"image_size": 1024, "faces_per_pixel": 100, "memory_budget_mb": 64}, api_name="/render"
        )
    with pytest.raises(AppError, match="Unknown render setting"):
        client.predict("ico-sphere", None, {"colour": "red"}, api_name="/render")


def test_buffers_compare_and_rotations(client):
    buffers, terms, summary = client.predict("ico-sphere", None, SMALL, api_name="/render_buffers")
    assert len(buffers) == 5 and len(terms) == 5
    assert as_dict(summary)["terms_max_abs_error_vs_shader"] < 1e-4
    a, b, diff, stats = client.predict(
        "ico-sphere", None, SMALL, {**SMALL, "shader": "hard-gouraud"}, 4, api_name="/render_compare"
    )
    assert as_dict(stats)["mean_abs_diff"] > 0 and read_image(diff).shape == (64, 64, 3)
    image, info = client.predict(
        "cube", None, SMALL, "axis-angle", "0, 1, 0, 45", "XYZ", "0, 0, 0", api_name="/rotations"
    )
    info = as_dict(info)
    assert info["axis_angle"]["angle_deg"] == pytest.approx(45.0, abs=1e-3)
    assert max(info["round_trip_max_abs_error"].values()) < 1e-5
    assert read_image(image).shape[1] > 128


def test_streamed_endpoints(client):
    job = client.submit("tiny", 500, 20, 0.1, 0.9, False, 0.0, api_name="/shading_points")
    outputs = list(job)
    metrics = as_dict(outputs[-1][2])  # status, curves, metrics, files, plot
    assert metrics["final_translation_error"] < metrics["initial_loss"]
    job = client.submit("light", ["ico-sphere", "cube"], "tiny", 3, 0, "adam", api_name="/shading_fit")
    final = list(job)[-1]
    assert "final_param_error" in as_dict(final[3])  # status, preview, curves, metrics, files, batch
    assert as_dict(final[5])["packed"]["verts_packed"] == [650, 3]
    job = client.submit("cube", None, SMALL, "tiny", 4, 8, ["gif", "mp4"], api_name="/turntable")
    final = list(job)[-1]
    files = final[3]  # status, preview, metrics, files, video, gif
    names = sorted(Path(f if isinstance(f, str) else f["path"]).suffix for f in files)
    assert ".gif" in names and ".mp4" in names


@pytest.mark.browser
def test_browser_opens_the_tab_and_renders(app_server, artifacts_dir):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run scripts/setup.sh dev (make test does).")
    from playwright.sync_api import sync_playwright

    url, _ = app_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator("#tab-shading-button").click()
            page.wait_for_selector("#tab-shading", state="visible")
            page.locator("#shading-shader").get_by_label("hard-flat").check()  # a live re-render starts
            page.locator("#shading-run").click()
            page.get_by_text("Render info (time, memory estimate, notes)").first.click()  # a closed accordion
            image = page.locator("#shading-image img")
            image.wait_for(state="visible", timeout=120_000)
            page.wait_for_function(
                "() => document.querySelector('#shading-info')?.innerText.includes('hard-flat')", timeout=120_000
            )
            shot = artifacts_dir / "shading-render.png"
            image.screenshot(path=str(shot))
            page.screenshot(path=str(artifacts_dir / "shading.png"), full_page=True)
            pixels = read_image(shot).reshape(-1, 3).astype(int)
            assert (np.abs(pixels - 255).sum(1) > 60).mean() > 0.05  # the mesh covers part of the white background
        finally:
            browser.close()
