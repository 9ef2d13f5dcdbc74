"""The app: built without launching, then launched on 127.0.0.1 and called through gradio_client."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
REQUIRED_APIS = {
    "inspect", "camera", "batch", "health", "runs_list", "runs_plot", "runs_bundle", "smpl", "smpl_preview", "smplify",
    "render", "render_buffers", "render_compare", "rotations", "turntable", "shading_fit", "shading_points",
    "multiview", "volume", "nerf", "nerf_render", "mesh_fit", "mesh_fit_experiments", "pose", "pose_track",
}  # fmt: skip


def api_names(demo) -> set[str]:
    return {d.get("api_name") for d in demo.config["dependencies"] if d.get("api_name")}


def test_build_without_launch(tmp_path):
    import app
    import tabs

    ctx = app.make_context(data_dir=tmp_path, device="cpu")
    demo = app.build_app(ctx)
    assert REQUIRED_APIS <= api_names(demo)
    labels = {c.get("props", {}).get("label") for c in demo.config["components"]}
    for _, title in tabs.TABS:
        assert title in labels
    assert not controls_without_help(demo), "every control explains itself (info=)"
    assert not preset_placeholders(demo), "boxes show the preset's real value, never a 0 that stands for it"


CONTROLS = ("number", "slider", "radio", "dropdown", "checkbox", "checkboxgroup", "textbox", "colorpicker")


def controls_without_help(demo) -> list[str]:
    """The labels of the settable controls that have no `info=` help under them."""
    return [
        f"{c['type']}: {c['props'].get('label')}"
        for c in demo.config["components"]
        if c["type"] in CONTROLS and c["props"].get("interactive") is not False and not c["props"].get("info")
    ]


def preset_placeholders(demo) -> list[str]:
    """Labels or help that say a 0 or an empty box stands for the preset's value."""
    pattern = re.compile(r"\b(0|empty|blank)\b\W{0,3}(means|=|:)?\s*the (preset|target)'s", re.IGNORECASE)
    texts = [f"{c['props'].get('label')} | {c['props'].get('info')}" for c in demo.config["components"]]
    return [t for t in texts if pattern.search(t)]


def test_parse_args_defaults():
    import app

    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.device) == ("127.0.0.1", 7860, False, "auto")
    args = app.parse_args(["--port", "9000", "--auth", "a:b", "--max-upload-mb", "5", "--models-dir", "/m"])
    assert (args.port, args.auth, args.max_upload_mb, args.models_dir) == (9000, "a:b", 5.0, "/m")


def inspect_call(client, *paths: Path, n_points: int = 200, exports: tuple[str, ...] = ()):
    from gradio_client import handle_file

    files = [handle_file(str(p)) for p in paths]
    return client.predict(files, n_points, list(exports), 2.0, False, True, api_name="/inspect")


def summary_of(result) -> dict:
    # outputs: status, metrics, files, summary, stats, cross-check, header, plot, warnings
    summary = result[3]
    return summary if isinstance(summary, dict) else json.loads(summary)


def test_inspect_endpoint_textured_obj(client):
    result = inspect_call(
        client,
        ASSETS / "textured_cube.obj",
        ASSETS / "textured_cube.mtl",
        ASSETS / "textured_cube.png",
        exports=("obj-zip",),
    )
    summary = summary_of(result)
    for key in (
        "format",
        "encoding",
        "num_vertices",
        "num_faces",
        "has_normals",
        "has_colors",
        "has_texture",
        "bbox_min",
        "bbox_max",
        "watertight",
        "warnings",
    ):
        assert key in summary, key
    assert summary["format"] == "obj" and summary["has_texture"] is True
    assert summary["num_faces"] == 12
    files = result[2]
    assert any(str(f).endswith(".glb") for f in _file_paths(files))
    assert any(str(f).endswith(".zip") for f in _file_paths(files))


def _file_paths(files) -> list[str]:
    out = []
    for f in files or []:
        out.append(f["path"] if isinstance(f, dict) else str(f))
    return out


def test_inspect_endpoint_binary_ply_then_hostile_then_good(client, tmp_path):
    summary = summary_of(inspect_call(client, ASSETS / "torus_binary.ply"))
    assert summary["format"] == "ply" and summary["encoding"] == "binary_little_endian"
    bad = tmp_path / "lying.ply"
    bad.write_bytes(
        b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999\nproperty float x\nproperty float y\nproperty float z\nend_header\n\x00\x00"
    )
    with pytest.raises(AppError) as err:
        inspect_call(client, bad)
    assert "Traceback" not in str(err.value) and "vert" in str(err.value).lower()
    # the app keeps serving
    assert summary_of(inspect_call(client, ASSETS / "torus_binary.ply"))["num_faces"] == summary["num_faces"]


def test_inspect_takes_one_file_by_keyword_and_says_when_there_is_none(client):
    """As the README shows it: keywords, one file without a list; no file at all is a sentence, not a traceback."""
    from gradio_client import handle_file

    result = client.predict(mesh_files=handle_file(str(ASSETS / "octahedron.off")), api_name="/inspect")
    summary = summary_of(result)
    assert summary["format"] == "off" and summary["num_faces"] == 8
    with pytest.raises(AppError) as err:
        client.predict(mesh_files=None, api_name="/inspect")
    assert "upload" in str(err.value).lower() and "Traceback" not in str(err.value)


def test_runs_are_recorded_and_bundled(client, app_server):
    _, ctx = app_server
    inspect_call(client, ASSETS / "torus_binary.ply")
    runs = ctx.store.list(pipeline="inspect", status="done")
    assert runs and runs[0].source == "ui"
    table = client.predict("all", "all", api_name="/runs_list")[0]
    assert runs[0].id in json.dumps(table)
    bundle = client.predict(runs[0].id, api_name="/runs_bundle")
    assert str(bundle).endswith(".zip") and Path(bundle).stat().st_size > 0
    with pytest.raises(AppError, match="No run with id"):
        client.predict("no-such-run", api_name="/runs_bundle")


def test_health_camera_batch_endpoints(client):
    _, report = client.predict(api_name="/health")
    report = report if isinstance(report, dict) else json.loads(report)
    assert report["pytorch3d_compiled_ops"]["ok"] is True
    # kind, dist, elev, azim, fov, scale, znear, zfar, fx, fy, px, py, in_ndc, height, width, R/T JSON
    camera = ["fov-perspective", 2.7, 20, 30, 60, 1.0, 0.1, 100.0, 1.7, 1.7, 0.0, 0.0, True, 128, 160, ""]
    fig, image, table, conv = client.predict(*camera, api_name="/camera")
    assert Path(image).is_file()
    conv = conv if isinstance(conv, dict) else json.loads(conv)
    assert {"opencv", "opengl", "round_trip"} <= set(conv)
    with pytest.raises(AppError, match="znear"):
        client.predict(*camera[:6], 5.0, 1.0, *camera[8:], api_name="/camera")  # znear beyond zfar
    fig, report = client.predict(api_name="/batch")
    assert report
