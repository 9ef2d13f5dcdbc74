"""Shared pieces of the 3D-file tests: freshly generated sample assets and small meshes built in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assets import make_assets
from pipelines.files.types import LoadedAsset


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> Path:
    """The sample assets, freshly generated (the committed ones are compared with these below)."""
    out = tmp_path_factory.mktemp("samples")
    make_assets.make_all(out)
    return out


def mesh_asset(verts, faces, name: str = "test.ply") -> LoadedAsset:
    return LoadedAsset(
        path=Path(name),
        format="ply",
        encoding="ascii",
        header="",
        verts=np.asarray(verts, dtype=np.float32),
        faces=np.asarray(faces, dtype=np.int64).reshape(-1, 3),
    )


def unit_cube() -> tuple[np.ndarray, np.ndarray]:
    """Unit cube [0, 1]^3 with 12 outward triangles."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    f = np.array([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads])
    return v, f
