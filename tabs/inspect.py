"""Inspect tab: 3D files (summary, statistics, header, viewers, cross-check, exports), cameras, and batches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gradio as gr
import numpy as np

from pipelines.inspect.pipeline import ASSETS_DIR, Config

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_paths, viewer_file

LESSON = r"""
**Meshes and point clouds.** A mesh is vertex positions $V\in\mathbb{R}^{N\times3}$ plus faces $F\in\mathbb{N}^{M\times3}$
(indices into $V$); polygons are split into triangle fans. A point cloud has no faces. PLY stores both with typed
*elements* (ascii or binary, little or big endian); OBJ keeps positions, texture coordinates and normals in separate
lists that faces index (`f v/vt/vn`, negative indices count from the end), with materials in an MTL file.

**Statistics.** Edges are unique unordered vertex pairs; a mesh is *watertight* when every edge has exactly two faces,
*edge-manifold* when none has more; the Euler characteristic $\chi = V - E + F$ is 2 for a closed sphere-like surface.
Surface area sums $\tfrac12\lVert(b-a)\times(c-a)\rVert$; volume (watertight only) sums signed tetrahedra
$\tfrac16\,a\cdot(b\times c)$.

**Cameras.** PyTorch3D maps world to view by $X_\text{view} = X_\text{world} R + T$ (row vectors), with +X left,
+Y up and +Z into the screen; the projection then maps view space to NDC ($[-1,1]$ on the shorter side) and finally
to pixels. OpenCV uses $x = K(R_\text{cv}X + t)$ with +X right, +Y down; OpenGL/glTF cameras look down −Z with +Y up.

**Batches.** Meshes of different sizes batch as a *list*, as *padded* tensors $(N, V_\max, 3)$ with a mask, or as one
*packed* tensor $(\sum V_i, 3)$ with index maps back to each mesh; packed faces are offset by each mesh's first vertex.
"""


def sample_groups() -> dict[str, list[str]]:
    """Bundled assets grouped by stem, e.g. {'textured_cube': [obj, mtl, png]}, for the sample picker."""
    exts = {".ply", ".obj", ".glb", ".gltf", ".stl", ".off"}
    groups: dict[str, list[str]] = {}
    if ASSETS_DIR.is_dir():
        for path in sorted(ASSETS_DIR.iterdir()):
            if path.is_file() and not path.name.startswith((".", "_")) and path.suffix.lower() != ".py":
                groups.setdefault(path.stem, []).append(str(path))
    return {k: v for k, v in groups.items() if any(Path(p).suffix.lower() in exts for p in v)}


def build(ctx: AppContext, tab: gr.Tab) -> None:
    from pipelines.files import mesh_io

    with gr.Accordion("Lesson: files, statistics, cameras, batches", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    asset_state = gr.State(None)
    viewer_state = gr.State(None)  # the GLB for the viewer, handed over by a chained event (see stream.viewer_file)
    with gr.Tabs():
        with gr.Tab("File"):
            samples = sample_groups()
            with gr.Row():
                with gr.Column(scale=1):
                    files = gr.File(
                        label="3D file(s): PLY, OBJ (+MTL, textures), GLB/glTF, STL, OFF, or a zip",
                        file_count="multiple",
                        file_types=[
                            ".ply",
                            ".obj",
                            ".mtl",
                            ".glb",
                            ".gltf",
                            ".bin",
                            ".stl",
                            ".off",
                            ".zip",
                            ".png",
                            ".jpg",
                            ".jpeg",
                        ],
                    )
                    sample = gr.Dropdown(list(samples), label="…or a bundled sample", value=None)
                    n_points = gr.Number(
                        10_000,
                        label="Surface points to sample (PLY export; 0 = none)",
                        precision=0,
                        minimum=0,
                        maximum=1_000_000,
                    )
                    exports = gr.CheckboxGroup(
                        [
                            ("PLY (binary)", "ply-binary"),
                            ("PLY (ascii)", "ply-ascii"),
                            ("OBJ + MTL + texture (zip)", "obj-zip"),
                        ],
                        value=[],
                        label="Also convert to",
                    )
                    with gr.Row():
                        go_btn = gr.Button("Inspect", variant="primary")
                        stop_button(ctx, "inspect")
                with gr.Column(scale=2):
                    model = gr.Model3D(
                        label="Viewer (GLB)",
                        height=420,
                        clear_color=(0.93, 0.93, 0.95, 1.0),
                        elem_id="inspect-model3d",
                        interactive=False,
                    )
            panel = run_panel(preview=False, curves=False)
            warnings = gr.Markdown(elem_id="inspect-warnings")
            with gr.Row():
                summary = gr.JSON(label="Summary")
                stats = gr.JSON(label="Geometry statistics")
            with gr.Row():
                check = gr.JSON(label="Cross-check (independent reader)")
                header = gr.Code(label="Raw header", language=None, lines=12)
            with gr.Row():
                point_size = gr.Slider(0.5, 10, value=2.0, step=0.5, label="Point size")
                wireframe = gr.Checkbox(False, label="Wireframe")
                axes = gr.Checkbox(True, label="Axes")
            plot = gr.Plot(label="Plotly view")

        with gr.Tab("Cameras"):
            cam = _camera_panel(ctx, asset_state)
        with gr.Tab("Batches"):
            _batch_panel(asset_state)

    def _pick(name: str | None):
        return samples.get(name or "", None)

    sample.change(_pick, sample, files, api_name=False)

    def _inspect(file_list, n: float, extra: list[str], psize: float, wire: bool, show_axes: bool, request: gr.Request):
        paths = list(upload_paths(file_list))
        if not paths:
            raise gr.Error("Upload a 3D file first (or pick a bundled sample).")
        if n is None or not np.isfinite(n) or n < 0 or n > 1_000_000:
            raise gr.Error("Surface points must be between 0 and 1,000,000.")
        cfg = dataclasses.replace(
            Config.quick(),
            files=tuple(paths),
            sample_points=int(n),
            exports=("glb", *(e for e in extra or [] if e != "glb")),
            max_upload_mb=ctx.max_upload_mb,
        )

        def on_done(done) -> dict:
            asset = done.info["asset"]
            warn = done.info["summary"]["warnings"]
            return {
                summary: done.info["summary"],
                stats: done.info["stats"],
                check: done.info["cross_check"],
                header: done.info["header"],
                viewer_state: viewer_file(ctx, request, done.files["glb"]) if "glb" in done.files else None,
                plot: mesh_io.plotly_figure(asset, point_size=psize, wireframe=wire, show_axes=show_axes),
                warnings: ("**Warnings**\n" + "\n".join(f"- {w}" for w in warn)) if warn else "No warnings.",
                asset_state: asset,
            }

        yield from stream(ctx, panel, "inspect", cfg, preset="quick", request=request, tab="inspect", on_done=on_done)

    outputs = [*panel.outputs, summary, stats, check, header, plot, warnings, asset_state, viewer_state]
    go_btn.click(
        _inspect,
        [files, n_points, exports, point_size, wireframe, axes],
        outputs,
        api_name="inspect",
        concurrency_id="gpu",
        concurrency_limit=1,
    ).then(lambda path: path, viewer_state, model, api_name=False)

    def _replot(asset, psize: float, wire: bool, show_axes: bool):
        if asset is None:
            return gr.skip()
        return mesh_io.plotly_figure(asset, point_size=psize, wireframe=wire, show_axes=show_axes)

    for ctrl in (point_size, wireframe, axes):
        ctrl.change(_replot, [asset_state, point_size, wireframe, axes], plot, api_name=False)
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select.
    tab.select(lambda m: m, model, model, api_name=False)
    _ = cam


def _camera_panel(ctx: AppContext, asset_state: gr.State) -> dict:
    from pipelines.render import cameras

    gr.Markdown(
        "Set up a camera and see where points land in world, view, NDC and screen space. The sample points are the corners of the inspected mesh's bounding box (or of a unit cube)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            kind = gr.Radio(list(cameras.CAMERA_KINDS), value="fov-perspective", label="Camera")
            dist = gr.Slider(0.5, 20, value=2.7, step=0.1, label="Distance")
            elev = gr.Slider(-89, 89, value=20, step=1, label="Elevation (°)")
            azim = gr.Slider(-180, 180, value=30, step=1, label="Azimuth (°)")
            fov = gr.Slider(5, 150, value=60, step=1, label="FoV (°) — FoV cameras")
            scale = gr.Slider(0.1, 5, value=1.0, step=0.05, label="Scale — FoV-orthographic")
            with gr.Row():
                znear = gr.Number(0.1, label="znear")
                zfar = gr.Number(100.0, label="zfar")
            with gr.Row():
                fx = gr.Number(1.7, label="fx")
                fy = gr.Number(1.7, label="fy")
                px = gr.Number(0.0, label="px")
                py = gr.Number(0.0, label="py")
            in_ndc = gr.Checkbox(True, label="Focal length and principal point in NDC units (else pixels)")
            with gr.Row():
                height = gr.Number(256, label="Image height", precision=0)
                width = gr.Number(256, label="Image width", precision=0)
            rt = gr.Textbox(
                label='Optional R and T as JSON: {"R": [[..],[..],[..]], "T": [x, y, z]} (overrides dist/elev/azim)',
                lines=2,
            )
            cam_btn = gr.Button("Show camera", variant="primary")
        with gr.Column(scale=2):
            frustum = gr.Plot(label="Scene with the camera frustum")
            render = gr.Image(
                label="Render with the projected sample points", type="numpy", interactive=False, height=300
            )
    table = gr.Dataframe(label="Sample points in world, view, NDC and screen coordinates", interactive=False, wrap=True)
    conventions = gr.JSON(label="The same camera in OpenCV and OpenGL/glTF conventions, and the round-trip check")

    def _camera(asset, k, d, e, a, fv, sc, zn, zf, fx_, fy_, px_, py_, ndc, h, w, rt_text):
        extra = {}
        if rt_text and rt_text.strip():
            try:
                parsed = json.loads(rt_text)
                extra = {
                    "R": tuple(tuple(float(x) for x in row) for row in parsed["R"]),
                    "T": tuple(float(x) for x in parsed["T"]),
                }
            except (ValueError, KeyError, TypeError) as err:
                raise gr.Error(
                    f'R/T must be JSON like {{"R": [[1,0,0],[0,1,0],[0,0,1]], "T": [0,0,3]}} ({err}).'
                ) from None
        try:
            spec = cameras.CameraSpec(
                kind=k,
                dist=float(d),
                elev=float(e),
                azim=float(a),
                fov=float(fv),
                scale=float(sc),
                znear=float(zn),
                zfar=float(zf),
                fx=float(fx_),
                fy=float(fy_),
                px=float(px_),
                py=float(py_),
                in_ndc=bool(ndc),
                image_size=(int(h or 0), int(w or 0)),
                **extra,
            )
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), title="Camera settings") from None
        verts = None if asset is None else asset.verts
        faces = None if asset is None else asset.faces
        pts = cameras.default_sample_points(verts)
        if verts is None or faces is None or len(faces) == 0:
            from pytorch3d.utils import ico_sphere

            sphere = ico_sphere(2)
            verts, faces = sphere.verts_packed().numpy(), sphere.faces_packed().numpy()
            pts = cameras.default_sample_points(None)
        rows = cameras.point_table(spec, pts)
        return (
            cameras.frustum_figure(spec, pts, verts, faces),
            cameras.render_with_points(spec, (verts, faces), pts),
            _table_rows(rows),
            {
                "opencv": cameras.to_opencv(spec, spec.image_size),
                "opengl": cameras.to_opengl(spec),
                "round_trip": cameras.round_trip_report(spec),
            },
        )

    inputs = [asset_state, kind, dist, elev, azim, fov, scale, znear, zfar, fx, fy, px, py, in_ndc, height, width, rt]
    cam_btn.click(_camera, inputs, [frustum, render, table, conventions], api_name="camera", concurrency_id="gpu")
    return {"button": cam_btn}


def _table_rows(rows: list[dict]):
    import pandas as pd

    def fmt(v):
        if isinstance(v, (list, tuple, np.ndarray)):
            return "(" + ", ".join(f"{float(x):.4f}" for x in v) + ")"
        return v

    return pd.DataFrame([{k: fmt(v) for k, v in r.items()} for r in rows])


def _batch_panel(asset_state: gr.State) -> None:
    from pipelines.render import batches

    gr.Markdown(
        "Three procedural meshes of different sizes (plus the inspected mesh, if any) as one PyTorch3D `Meshes` batch."
    )
    btn = gr.Button("Show the batch", variant="primary")
    fig = gr.Plot(label="How packed rows map to meshes, and where padding lies")
    report = gr.JSON(label="List, padded and packed representations")

    def _batch(asset):
        demo = batches.demo_batch()
        meshes = [(v.numpy(), f.numpy()) for v, f in zip(demo.verts_list(), demo.faces_list())]
        if asset is not None and len(asset.faces) and len(asset.verts) <= 200_000:
            meshes.append((asset.verts, asset.faces))
        return batches.batch_figure(meshes), batches.batch_report(meshes)

    btn.click(_batch, asset_state, [fig, report], api_name="batch")
