"""Inspect tab: 3D files (summary, statistics, header, viewers, cross-check, exports), cameras, and batches."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from pipelines.core.events import Done
from pipelines.files.plotly_view import plotly_figure
from pipelines.inspect.pipeline import ASSETS_DIR, Config
from pipelines.render import batches

from .context import AppContext
from .inspect_cameras import camera_panel
from .stream import stream
from .widgets import (
    LATEX,
    MESH_WITH_TEXTURE_TYPES,
    RunPanel,
    bind,
    config_for,
    gpu_click,
    model3d,
    refresh_on_select,
    run_panel,
    show_in_viewer,
    stop_button,
    upload_box,
    upload_paths,
    viewer_file,
)

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


@dataclass
class InspectUI:
    """The File section's result components, which /inspect updates by component (besides the run panel)."""

    panel: RunPanel
    summary: gr.JSON
    stats: gr.JSON
    check: gr.JSON
    header: gr.Code
    plot: gr.Plot
    warnings: gr.Markdown
    asset_state: gr.State
    viewer_state: gr.State  # the GLB for the viewer, handed over by a chained event (see widgets.viewer_file)

    @property
    def outputs(self) -> list[Any]:
        """/inspect's outputs, in order."""
        extras = [self.summary, self.stats, self.check, self.header, self.plot, self.warnings]
        return [*self.panel.outputs, *extras, self.asset_state, self.viewer_state]


def sample_groups() -> dict[str, list[str]]:
    """Bundled assets grouped by stem, e.g. {'textured_cube': [obj, mtl, png]}, for the sample picker."""
    exts = {".ply", ".obj", ".glb", ".gltf", ".stl", ".off"}
    groups: dict[str, list[str]] = {}
    if ASSETS_DIR.is_dir():
        for path in sorted(ASSETS_DIR.iterdir()):
            if path.is_file() and not path.name.startswith((".", "_")) and path.suffix.lower() != ".py":
                groups.setdefault(path.stem, []).append(str(path))
    return {k: v for k, v in groups.items() if any(Path(p).suffix.lower() in exts for p in v)}


def first_samples(names: list[str], count: int = 6) -> list[str]:
    """The samples worth a first look (textured, then a binary PLY), then the others, at most `count`."""
    liked = [n for n in ("textured_cube", "textured_sphere", "torus_binary") if n in names]
    return (liked + [n for n in names if n not in liked])[:count]


def pick_sample(sample_name: str | None) -> list[str] | None:
    """The files of a bundled sample, for the upload box."""
    return sample_groups().get(sample_name or "", None)


def inspect_files(
    mesh_files: Any,
    surface_points: float,
    exports: list[str],
    point_size: float,
    wireframe: bool,
    show_axes: bool,
    request: gr.Request,
    *,
    ctx: AppContext,
    ui: InspectUI,
) -> Iterator[dict]:
    """/inspect: load the file(s) (one file or a list), measure, cross-check and convert them; streams the panel."""
    paths = upload_paths(mesh_files)
    if not paths:
        raise gr.Error("Upload a 3D file first (or pick a bundled sample).")
    if surface_points is None or not np.isfinite(surface_points) or not 0 <= surface_points <= 1_000_000:
        raise gr.Error("Surface points must be between 0 and 1,000,000.")
    cfg = config_for(
        ctx,
        Config,
        "quick",
        files=paths,
        sample_points=int(surface_points),
        exports=("glb", *(e for e in exports or [] if e != "glb")),
    )
    on_done = functools.partial(
        inspect_results,
        point_size=point_size,
        wireframe=wireframe,
        show_axes=show_axes,
        request=request,
        ctx=ctx,
        ui=ui,
    )
    yield from stream(ctx, ui.panel, "inspect", cfg, preset="quick", request=request, tab="inspect", on_done=on_done)


def inspect_results(
    done: Done,
    *,
    point_size: float,
    wireframe: bool,
    show_axes: bool,
    request: gr.Request | None,
    ctx: AppContext,
    ui: InspectUI,
) -> dict:
    """The File section's updates from a finished inspect run."""

    asset = done.info["asset"]
    warn = done.info["summary"]["warnings"]
    return {
        ui.summary: done.info["summary"],
        ui.stats: done.info["stats"],
        ui.check: done.info["cross_check"],
        ui.header: done.info["header"],
        ui.viewer_state: viewer_file(ctx, request, done.files["glb"]) if "glb" in done.files else None,
        ui.plot: plotly_figure(asset, point_size=point_size, wireframe=wireframe, show_axes=show_axes),
        ui.warnings: ("**Warnings**\n" + "\n".join(f"- {w}" for w in warn)) if warn else "No warnings.",
        ui.asset_state: asset,
    }


def replot(asset: Any, point_size: float, wireframe: bool, show_axes: bool) -> Any:
    """The Plotly view again with new display settings (nothing when no file was inspected yet)."""

    if asset is None:
        return gr.skip()
    return plotly_figure(asset, point_size=point_size, wireframe=wireframe, show_axes=show_axes)


def show_batch(inspected_asset: Any) -> tuple[Any, dict]:
    """/batch: three procedural meshes (plus the inspected one, up to 200,000 vertices) as one batch."""

    demo = batches.demo_batch()
    meshes = [(v.numpy(), f.numpy()) for v, f in zip(demo.verts_list(), demo.faces_list())]
    if inspected_asset is not None and len(inspected_asset.faces) and len(inspected_asset.verts) <= 200_000:
        meshes.append((inspected_asset.verts, inspected_asset.faces))
    return batches.batch_figure(meshes), batches.batch_report(meshes)


def build(ctx: AppContext, tab: gr.Tab) -> None:
    with gr.Accordion("Lesson: files, statistics, cameras, batches", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    asset_state = gr.State(None)
    viewer_state = gr.State(None)
    with gr.Tabs():
        with gr.Tab("File"):
            _file_section(ctx, tab, asset_state, viewer_state)
        with gr.Tab("Cameras"):
            camera_panel(asset_state)
        with gr.Tab("Batches"):
            _batch_section(asset_state)


def _file_inputs(ctx: AppContext) -> tuple[list[Any], gr.Button]:
    """The File section's input column (with the sample picker): /inspect's first three inputs and its button."""
    files = upload_box("3D file(s): PLY, OBJ (+MTL, textures), GLB/glTF, STL, OFF, or a zip", MESH_WITH_TEXTURE_TYPES)
    sample = gr.Dropdown(
        list(sample_groups()),
        label="…or a bundled sample",
        info="Meshes and point clouds that ship with the studio: textured OBJ and GLB, PLY, STL, OFF",
        value=None,
    )
    n_points = gr.Number(
        10_000,
        label="Surface points to sample (PLY export; 0 = none)",
        info="A point cloud sampled on the surface",
        precision=0,
        minimum=0,
        maximum=1_000_000,
    )
    exports = gr.CheckboxGroup(
        [("PLY (binary)", "ply-binary"), ("PLY (ascii)", "ply-ascii"), ("OBJ + MTL + texture (zip)", "obj-zip")],
        value=[],
        label="Also convert to",
        info="Files written beside the GLB the viewer shows",
    )
    with gr.Row():
        button = gr.Button("Inspect", variant="primary", elem_id="inspect-run")
        stop_button(ctx, "inspect")
    sample.change(pick_sample, sample, files, api_name=False)
    samples = list(sample_groups())
    if samples:
        gr.Examples(
            [[name] for name in first_samples(samples)],
            [sample],
            label="Examples: a bundled sample",
            elem_id="inspect-examples",
        )
    return [files, n_points, exports], button


def _file_section(ctx: AppContext, tab: gr.Tab, asset_state: gr.State, viewer_state: gr.State) -> None:
    """Lays out the File section (upload, viewer, results) and wires /inspect and the display controls."""
    with gr.Row():
        with gr.Column(scale=1, min_width=400):
            inputs, button = _file_inputs(ctx)
        with gr.Column(scale=2, min_width=400):
            model = model3d("Viewer (GLB)", "inspect-model3d", height=420, interactive=False)
    panel = run_panel(preview=False, curves=False)
    warnings = gr.Markdown(elem_id="inspect-warnings", label="Warnings")
    with gr.Accordion("Summary, statistics and cross-check (JSON)", open=False):
        with gr.Row():
            summary = gr.JSON(label="Summary")
            stats = gr.JSON(label="Geometry statistics")
        check = gr.JSON(label="Cross-check (independent reader)")
    with gr.Accordion("Raw header", open=False):
        header = gr.Code(label="Raw header", language=None, lines=12)
    with gr.Row():
        point_size = gr.Slider(
            0.5, 10, value=2.0, step=0.5, label="Point size", info="Marker size of the points in the Plotly view"
        )
        wireframe = gr.Checkbox(False, label="Wireframe", info="Draw the mesh's edges in the Plotly view")
        axes = gr.Checkbox(True, label="Axes", info="Show the x, y, z axes in the Plotly view")
    plot = gr.Plot(label="Plotly view")
    ui = InspectUI(panel, summary, stats, check, header, plot, warnings, asset_state, viewer_state)
    display = [point_size, wireframe, axes]
    event = gpu_click(button, bind(inspect_files, ctx=ctx, ui=ui), [*inputs, *display], ui.outputs, api_name="inspect")
    show_in_viewer(event, viewer_state, model)
    for control in display:
        control.change(replot, [asset_state, *display], plot, api_name=False)
    refresh_on_select(tab, model)


def _batch_section(asset_state: gr.State) -> None:
    """Lays out the Batches section and wires /batch."""
    gr.Markdown(
        "Three procedural meshes of different sizes (plus the inspected mesh, if any) as one PyTorch3D `Meshes` batch."
    )
    button = gr.Button("Show the batch", variant="primary")
    fig = gr.Plot(label="How packed rows map to meshes, and where padding lies")
    report = gr.JSON(label="List, padded and packed representations")
    button.click(show_batch, asset_state, [fig, report], api_name="batch")
