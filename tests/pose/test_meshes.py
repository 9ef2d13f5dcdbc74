"""Pose's mesh: uploads go through the shared loader, normalised to the unit sphere, within the upload limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.pose.meshes import load_mesh

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def test_uploads_go_through_the_shared_loader(tmp_path):
    cpu = torch.device("cpu")
    files = tuple(str(ASSETS / f"two_materials.{ext}") for ext in ("obj", "mtl"))
    mesh, _ = load_mesh(files, tmp_path / "a", 1, cpu)
    colors = mesh.textures.verts_features_packed()  # MTL Kd diffuse colours, averaged per vertex
    assert bool((colors[:, 0] > colors[:, 2] + 0.3).any()) and bool((colors[:, 2] > colors[:, 0] + 0.5).any())
    assert float(mesh.verts_packed().norm(dim=1).max()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="MB"):
        load_mesh(files, tmp_path / "b", 1, cpu, max_upload_mb=1e-5)
    (tmp_path / "dot.obj").write_text("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n")
    with pytest.raises(ValueError, match="no extent"):
        load_mesh((str(tmp_path / "dot.obj"),), tmp_path / "c", 1, cpu)
