"""The Mesh R-CNN tab's endpoints through gradio_client: a held-out sample with the shipped model, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import handle_file


def test_meshrcnn_endpoint_reconstructs_a_held_out_sample(client):
    result = client.predict(None, 1, "studio", None, api_name="/meshrcnn")
    metrics = next(r for r in result if isinstance(r, dict) and "object_found" in r)
    assert metrics["object_found"] == 1.0 and metrics["f1@0.3"] >= 0.0
    files = next(
        r for r in result if isinstance(r, list) and r and str(r[0]).endswith((".glb", ".obj", ".ply", ".png"))
    )
    assert any(str(f).endswith("refined.obj") for f in files)


def test_meshrcnn_endpoint_refuses_a_non_image(client, tmp_path: Path):
    bad = tmp_path / "not_a_picture.png"
    bad.write_text("hello")
    with pytest.raises(Exception, match="not a picture"):
        client.predict(handle_file(str(bad)), 0, "studio", None, api_name="/meshrcnn")


def test_meshrcnn_endpoint_detection_mode_says_when_it_uses_true_boxes(client):
    result = client.predict(None, 0, "studio", None, "tiny", "detection", True, api_name="/meshrcnn")
    metrics = next(r for r in result if isinstance(r, dict) and "objects" in r)
    assert metrics["objects"] >= 2 and metrics["true_found"] == metrics["objects"]
    message = next(r for r in result if isinstance(r, str) and "Detection mode" in r)
    assert "true boxes (no detector ran)" in message
