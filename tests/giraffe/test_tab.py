"""The GIRAFFE tab's endpoints through gradio_client: generation with the shipped model, and a corrupt upload."""

from __future__ import annotations

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError


def test_generate_with_the_shipped_model(client):
    result = client.predict(
        model="", upload=None, control="move-horizontal", object_index=0, n_objects=1, amount=0.5, frames=4, seed=0,
        api_name="/giraffe_generate",
    )  # fmt: skip
    metrics = next(item for item in result if isinstance(item, dict) and "run_id" in item)
    assert metrics["centroid_error_px"] >= 0 and 0 <= metrics["alpha_in_box"] <= 1
    paths = [item.get("value") if isinstance(item, dict) else item for item in result]
    assert any(str(p).endswith(".gif") for p in paths if p), result


def test_a_corrupt_checkpoint_upload_gets_a_sentence(client, tmp_path):
    bad = tmp_path / "checkpoint_compcars64-e85060a0.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(AppError, match="not a readable PyTorch checkpoint"):
        client.predict(model="", upload=handle_file(str(bad)), control="rotate", object_index=0, n_objects=1,
                       amount=0.5, frames=3, seed=0, api_name="/giraffe_generate")  # fmt: skip
    with pytest.raises(AppError, match="places up to"):
        client.predict(model="", upload=None, control="rotate", object_index=0, n_objects=8, amount=0.5, frames=3,
                       seed=0, api_name="/giraffe_generate")  # fmt: skip
    with pytest.raises(AppError, match="Unknown model|not in the list of choices"):
        client.predict(model="/etc/hostname", upload=None, api_name="/giraffe_fid")
