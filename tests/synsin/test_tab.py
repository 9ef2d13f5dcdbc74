"""The SynSin tab's endpoints through gradio_client: a held-out view, and a non-image upload refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError


def test_synsin_view_endpoint(client):
    out = client.predict(input_picture="held-out room", heldout_room=2, yaw_deg=30, preset="tiny", api_name="/synsin")
    truth, depth, projected, sweep = out[-6:-2]
    for path in (truth, depth, projected, sweep):
        assert path and Path(path).is_file()
    assert "clamped" in out[-1]


def test_synsin_refuses_a_non_image(client, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(AppError, match="not a picture"):
        client.predict(input_picture="upload", image=handle_file(str(fake)), preset="tiny", api_name="/synsin")
