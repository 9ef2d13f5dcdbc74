"""The shared 3D viewer: a GLB turned to the three-quarter view for the viewer's copy only (geometry rotated, the
binary chunk and textures untouched), other files copied as they are, and read-only viewers hidden while empty."""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import trimesh

import app
from tabs.viewer import (
    HIDE_WHEN_EMPTY,
    THREE_QUARTER_DEG,
    model3d,
    turn_quaternion,
    turned_glb,
    turned_in_place,
    viewer_file,
)

ROOT = Path(__file__).resolve().parents[2]
SPHERE = ROOT / "assets" / "textured_sphere.glb"


def rotation(yaw_deg: float, tilt_deg: float) -> np.ndarray:
    """R_x(tilt) @ R_y(yaw), written out: the reference the quaternion must match."""
    y, t = math.radians(yaw_deg), math.radians(tilt_deg)
    r_y = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    r_x = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    return r_x @ r_y


def test_quaternion_is_yaw_then_tilt():
    x, y, z, w = turn_quaternion(35.0, 15.0)
    quat = trimesh.transformations.quaternion_matrix([w, x, y, z])[:3, :3]  # trimesh orders (w, x, y, z)
    np.testing.assert_allclose(quat, rotation(35.0, 15.0), atol=1e-12)
    top = rotation(0.0, 15.0) @ np.array([0.0, 1.0, 0.0])
    assert top[2] > 0, "the tilt brings the top towards a viewer on +Z"


def test_turned_glb_rotates_the_geometry_and_keeps_the_binary_chunk():
    data = SPHERE.read_bytes()
    turned = turned_glb(data, *THREE_QUARTER_DEG)
    assert turned[-200:] == data[-200:], "the binary chunk is copied byte for byte"
    assert int.from_bytes(turned[8:12], "little") == len(turned)
    before = trimesh.load(trimesh.util.wrap_as_stream(data), file_type="glb", force="scene")
    after = trimesh.load(trimesh.util.wrap_as_stream(turned), file_type="glb", force="scene")
    v0 = before.to_geometry().vertices
    v1 = after.to_geometry().vertices
    np.testing.assert_allclose(v1, v0 @ rotation(*THREE_QUARTER_DEG).T, atol=1e-5)
    texture = [g.visual.material for g in after.geometry.values()]
    assert texture and all(m is not None for m in texture), "materials survive the turn"


def test_turned_glb_refuses_what_is_not_a_glb():
    with pytest.raises(ValueError):
        turned_glb(b"ply\nformat ascii 1.0\n" * 4, 35.0, 15.0)
    with pytest.raises(ValueError):
        turned_glb(b"glTF", 35.0, 15.0)


def test_viewer_file_turns_glbs_and_copies_the_rest(tmp_path):
    ctx = app.make_context(data_dir=tmp_path / "data", device="cpu")
    glb = Path(viewer_file(ctx, None, SPHERE))
    assert glb.read_bytes() != SPHERE.read_bytes() and glb.parent.name == "viewer"
    ply = ROOT / "assets" / "torus_binary.ply"
    assert Path(viewer_file(ctx, None, ply)).read_bytes() == ply.read_bytes()


def test_result_viewers_are_read_only_and_hidden_while_empty():
    with gr.Blocks():
        viewer = model3d("Result", "result-model3d")
    assert viewer.interactive is False and HIDE_WHEN_EMPTY in viewer.elem_classes
    assert f".{HIDE_WHEN_EMPTY}:has(" in app.CSS


def test_turned_in_place_turns_a_preview_glb_and_leaves_other_files(tmp_path):
    glb = tmp_path / "preview.glb"
    glb.write_bytes(SPHERE.read_bytes())
    assert turned_in_place(glb) == str(glb) and glb.read_bytes() == turned_glb(SPHERE.read_bytes(), *THREE_QUARTER_DEG)
    ply = tmp_path / "points.ply"
    ply.write_bytes(b"ply\n")
    assert turned_in_place(ply) == str(ply) and ply.read_bytes() == b"ply\n"
