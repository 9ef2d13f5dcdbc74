"""The Shading lab's controls column: the mesh (picked or uploaded, staged once per file set) and the render
settings widgets, folded into the one settings dict the lab's endpoints take."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from pipelines.files.types import Limits
from pipelines.files.upload import stage_upload
from pipelines.render.colors import color_hex, parse_color
from pipelines.render.factories import CAMERAS, LIGHTS, SHADERS
from pipelines.shading.meshes import load_mesh_with_notes, mesh_choices
from pipelines.shading.settings import OVERFLOW_MODES, RenderSettings

from .context import AppContext
from .widgets import MESH_WITH_TEXTURE_TYPES, upload_box, upload_paths

if TYPE_CHECKING:
    from pytorch3d.structures import Meshes

WIDGET_ORDER = (
    "shader", "light", "light_x", "light_y", "light_z", "light_ambient", "light_diffuse", "light_specular",
    "material_ambient", "material_diffuse", "material_specular", "shininess",
    "camera", "dist", "elev", "azim", "fov", "ortho_scale",
    "image_size", "blur_radius", "faces_per_pixel", "bin_size", "cull_backfaces", "sigma", "gamma",
    "background", "memory_budget_mb", "on_overflow",
)  # fmt: skip
"""The settings widgets' names, in the order `settings_from_widgets` takes their values."""

COLOR_FIELDS = (
    "light_ambient",
    "light_diffuse",
    "light_specular",
    "material_ambient",
    "material_diffuse",
    "material_specular",
    "background",
)
SLIDER_FIELDS = (
    "light_x",
    "light_y",
    "light_z",
    "shininess",
    "dist",
    "elev",
    "azim",
    "fov",
    "ortho_scale",
    "image_size",
    "faces_per_pixel",
)
"""Widgets that update the settings when released (not at every step of a drag)."""


# ---------------------------------------------------------------------------------------------------------------
# Settings: widgets -> dict -> RenderSettings
# ---------------------------------------------------------------------------------------------------------------


def parse_settings(value: Any) -> RenderSettings:
    """RenderSettings from the API's/UI's settings (a dict, JSON text or None); gr.Error on bad values."""
    try:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else None
        return RenderSettings.from_dict(value)
    except json.JSONDecodeError as err:
        raise gr.Error(f"The settings are not valid JSON: {err.msg}.", title="Render settings") from None
    except (TypeError, ValueError) as err:
        raise gr.Error(str(err), title="Render settings") from None


def settings_from_widgets(*values: Any) -> dict[str, Any]:
    """The settings dict from the widgets' values, in WIDGET_ORDER."""
    v = dict(zip(WIDGET_ORDER, values))
    xyz = (v.pop("light_x"), v.pop("light_y"), v.pop("light_z"))
    v["light_xyz"] = [float(c) if c is not None else 0.0 for c in xyz]
    for key in COLOR_FIELDS:
        try:
            # 2 decimals: a colour picker's 1/255 steps would turn the default 0.3 into 0.298 after one render
            v[key] = [round(c, 2) for c in parse_color(v[key], key)]
        except ValueError:
            v[key] = getattr(RenderSettings(), key)
    return v


def book_soft_values() -> tuple[str, float, int, float, float]:
    """The book's soft settings for the shader, blur radius, faces-per-pixel, sigma and gamma widgets."""
    s = RenderSettings.book_soft()
    return s.shader, s.blur_radius, s.faces_per_pixel, s.sigma, s.gamma


# ---------------------------------------------------------------------------------------------------------------
# The mesh
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class MeshSource:
    """The mesh a request renders: the upload (staged once per file set, in the session's folder) or the picked
    mesh. One per app: it remembers the staged uploads, so live re-renders do not copy the files again."""

    ctx: AppContext
    staged: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, mesh_name: str | None, mesh_files: Any, request: gr.Request | None) -> str:
        """The mesh to render: the upload (staged once per file set) or the picked mesh."""
        paths = list(upload_paths(mesh_files))
        if not paths:
            if not mesh_name:
                raise gr.Error("Pick a mesh or upload a 3D file.")
            return str(mesh_name)
        key_src = "|".join(f"{p}:{Path(p).stat().st_size if Path(p).exists() else 0}" for p in sorted(paths))
        key = hashlib.sha1(key_src.encode()).hexdigest()[:16]
        with self.lock:
            if key in self.staged and Path(self.staged[key]).is_file():
                return self.staged[key]
        dest = self.ctx.session_dir(getattr(request, "session_hash", None)) / "shading" / key
        try:
            main = stage_upload(paths, dest, Limits(max_upload_mb=self.ctx.max_upload_mb))
        except ValueError as err:
            raise gr.Error(str(err), title="Upload") from None
        with self.lock:
            if len(self.staged) > 64:
                self.staged.clear()
            self.staged[key] = str(main)
        return str(main)

    def load(self, mesh_name: str | None, mesh_files: Any, request: gr.Request | None) -> tuple[Meshes, list[str]]:
        """The mesh as a one-mesh batch on the app's device, with the loader's notes."""
        source = self.path(mesh_name, mesh_files, request)
        try:
            return load_mesh_with_notes(source, self.ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Mesh") from None


# ---------------------------------------------------------------------------------------------------------------
# The controls column
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SettingsPanel:
    """The controls column: the mesh pickers, every settings widget by name, and the settings JSON they fill."""

    mesh: gr.Dropdown
    files: gr.File
    widgets: dict[str, Any]
    book_soft: gr.Button
    live: gr.Checkbox
    settings_json: gr.JSON

    @property
    def inputs(self) -> list[Any]:
        """The settings widgets in WIDGET_ORDER (the inputs of `settings_from_widgets`)."""
        return [self.widgets[name] for name in WIDGET_ORDER]


UI_DEFAULTS = dataclasses.replace(RenderSettings(), dist=2.0)
"""The settings the tab opens with: the pipeline's, with the camera closer so the subject fills the picture."""


def settings_column() -> SettingsPanel:
    """Lays out the mesh pickers and the settings accordions (inside the caller's column)."""
    defaults = UI_DEFAULTS
    choices = mesh_choices()
    names = [c[1] if isinstance(c, tuple) else c for c in choices]
    start = next((name for name in ("cow", "teapot", "ico-sphere") if name in names), names[0])
    mesh = gr.Dropdown(
        choices, value=start, label="Mesh", elem_id="shading-mesh", info="The book's cow and teapot first"
    )
    files = upload_box("…or upload a mesh (OBJ + MTL + texture, PLY, GLB, STL, OFF, or a zip)", MESH_WITH_TEXTURE_TYPES)
    widgets: dict[str, Any] = {
        "shader": gr.Radio(
            list(SHADERS),
            value=defaults.shader,
            label="Shader",
            info="How a pixel's colour is computed: per pixel (Phong), per vertex (Gouraud), per face (flat), or a soft mask",
            elem_id="shading-shader",
        )
    }
    widgets.update(_light_controls(defaults))
    widgets.update(_material_controls(defaults))
    widgets.update(_camera_controls(defaults))
    raster, book_soft = _raster_controls(defaults)
    widgets.update(raster)
    widgets["background"] = gr.ColorPicker(
        color_hex(defaults.background), label="Background", info="Colour of empty pixels"
    )
    with gr.Accordion("Memory guard", open=False):
        widgets["memory_budget_mb"] = gr.Number(
            defaults.memory_budget_mb,
            label="Budget for the rasteriser (MiB)",
            info="Renders estimated above this are refused or shrunk",
            minimum=1,
        )
        widgets["on_overflow"] = gr.Radio(
            list(OVERFLOW_MODES),
            value=defaults.on_overflow,
            label="Over budget",
            info="What happens to a render estimated above the budget",
        )
    live = gr.Checkbox(True, label="Re-render when a setting changes", info="Off: render with the button only")
    with gr.Accordion("Settings as JSON (the API's `settings` argument)", open=False):
        settings_json = gr.JSON(
            defaults.to_dict(), label="Settings (the API's `settings` argument)", elem_id="shading-settings"
        )
    return SettingsPanel(mesh, files, widgets, book_soft, live, settings_json)


def _light_controls(defaults: RenderSettings) -> dict[str, Any]:
    with gr.Accordion("Light", open=True):
        light = gr.Radio(
            list(LIGHTS),
            value=defaults.light,
            label="Light (point: position; directional: towards the light)",
            info="A point light shines from x, y, z; a directional one along it, the same everywhere",
        )
        x = gr.Slider(
            -6, 6, value=defaults.light_xyz[0], step=0.1, label="x", info="+X points left in PyTorch3D's world"
        )
        y = gr.Slider(-6, 6, value=defaults.light_xyz[1], step=0.1, label="y", info="+Y points up")
        z = gr.Slider(-6, 6, value=defaults.light_xyz[2], step=0.1, label="z", info="+Z points away from the camera")
        with gr.Row():
            ambient = gr.ColorPicker(
                color_hex(defaults.light_ambient), label="Ambient L_a", info="Light that reaches every point equally"
            )
            diffuse = gr.ColorPicker(
                color_hex(defaults.light_diffuse),
                label="Diffuse L_d",
                info="Light scattered evenly: brightest where the surface faces the light",
            )
            specular = gr.ColorPicker(
                color_hex(defaults.light_specular),
                label="Specular L_s",
                info="Light reflected like a mirror: the highlight",
            )
    return {
        "light": light,
        "light_x": x,
        "light_y": y,
        "light_z": z,
        "light_ambient": ambient,
        "light_diffuse": diffuse,
        "light_specular": specular,
    }


def _material_controls(defaults: RenderSettings) -> dict[str, Any]:
    with gr.Accordion("Material", open=False):
        with gr.Row():
            ambient = gr.ColorPicker(
                color_hex(defaults.material_ambient),
                label="Ambient k_a",
                info="How much ambient light the material reflects, per channel",
            )
            diffuse = gr.ColorPicker(
                color_hex(defaults.material_diffuse),
                label="Diffuse k_d",
                info="The material's matte colour (multiplies the texture)",
            )
            specular = gr.ColorPicker(
                color_hex(defaults.material_specular), label="Specular k_s", info="The highlight's colour"
            )
        shininess = gr.Slider(
            1, 256, value=defaults.shininess, step=1, label="Shininess α", info="Higher: a smaller, sharper highlight"
        )
    return {
        "material_ambient": ambient,
        "material_diffuse": diffuse,
        "material_specular": specular,
        "shininess": shininess,
    }


def _camera_controls(defaults: RenderSettings) -> dict[str, Any]:
    with gr.Accordion("Camera", open=False):
        return {
            "camera": gr.Radio(
                list(CAMERAS),
                value=defaults.camera,
                label="Camera",
                info="Perspective (FoV) or orthographic projection",
            ),
            "dist": gr.Slider(
                1.0,
                10.0,
                value=defaults.dist,
                step=0.1,
                label="Distance",
                info="From the object's centre, in world units",
            ),
            "elev": gr.Slider(
                -89, 89, value=defaults.elev, step=1, label="Elevation (°)", info="Angle above the horizontal plane"
            ),
            "azim": gr.Slider(
                -180, 180, value=defaults.azim, step=1, label="Azimuth (°)", info="Angle around the vertical axis"
            ),
            "fov": gr.Slider(
                10,
                120,
                value=defaults.fov,
                step=1,
                label="Field of view (°), perspective",
                info="Wider: more of the scene, stronger perspective",
            ),
            "ortho_scale": gr.Slider(
                0.2,
                3.0,
                value=defaults.ortho_scale,
                step=0.05,
                label="Scale, orthographic",
                info="Zoom of the orthographic camera",
            ),
        }


def _raster_controls(defaults: RenderSettings) -> tuple[dict[str, Any], gr.Button]:
    with gr.Accordion("Rasteriser and blending", open=False):
        image_size = gr.Slider(
            32, 1024, value=defaults.image_size, step=32, label="Image size (px)", info="Width and height of the render"
        )
        faces_per_pixel = gr.Slider(
            1,
            100,
            value=defaults.faces_per_pixel,
            step=1,
            label="Faces per pixel K",
            info="Nearest faces kept per pixel; soft shaders blend them",
        )
        with gr.Row():
            blur = gr.Number(
                defaults.blur_radius,
                label="Blur radius (NDC²)",
                info="How far outside a face a pixel still counts as covered (0: hard edges)",
                minimum=0,
                maximum=2,
                step=1e-4,
            )
            bin_size = gr.Number(
                defaults.bin_size,
                label="Bin size (−1 auto, 0 naive)",
                info="Coarse-to-fine rasterisation tile size; leave −1",
                precision=0,
                minimum=-1,
            )
        with gr.Row():
            sigma = gr.Number(
                defaults.sigma,
                label="σ (edge softness)",
                info="Soft silhouette: larger blurs edges",
                minimum=1e-8,
                step=1e-5,
            )
            gamma = gr.Number(
                defaults.gamma,
                label="γ (depth softness)",
                info="Soft blending: larger mixes faces behind",
                minimum=1e-8,
                step=1e-5,
            )
        cull = gr.Checkbox(
            defaults.cull_backfaces, label="Cull back faces", info="Skip faces that point away from the camera"
        )
        book_soft = gr.Button("Use the book's soft settings (σ = 1e-4, blur = log(1/1e-4 − 1)·σ, K = 50)", size="sm")
    widgets = {
        "image_size": image_size,
        "blur_radius": blur,
        "faces_per_pixel": faces_per_pixel,
        "bin_size": bin_size,
        "cull_backfaces": cull,
        "sigma": sigma,
        "gamma": gamma,
    }
    return widgets, book_soft


def wire_settings(panel: SettingsPanel) -> None:
    """Widgets -> settings JSON, cheap and unqueued: sliders on release, numbers on submit or blur, the rest on
    change; the book's soft settings button fills its widgets and then the JSON."""
    widgets = panel.widgets
    sliders = [widgets[name] for name in SLIDER_FIELDS]
    instant = [w for w in panel.inputs if w not in sliders]
    triggers = [w.release for w in sliders] + [w.change for w in instant if not isinstance(w, gr.Number)]
    triggers += [w.submit for w in instant if isinstance(w, gr.Number)] + [
        w.blur for w in instant if isinstance(w, gr.Number)
    ]
    gr.on(
        triggers,
        settings_from_widgets,
        panel.inputs,
        panel.settings_json,
        queue=False,
        api_name=False,
        show_progress="hidden",
    )
    book_outputs = [widgets[name] for name in ("shader", "blur_radius", "faces_per_pixel", "sigma", "gamma")]
    panel.book_soft.click(book_soft_values, None, book_outputs, queue=False, api_name=False).then(
        settings_from_widgets, panel.inputs, panel.settings_json, queue=False, api_name=False
    )


def refresh_settings(trigger: Any, panel: SettingsPanel, target: gr.JSON | None = None) -> Any:
    """`trigger.click` writes the widgets' settings into `target` (the settings JSON by default), unqueued; chain
    the run after it so the run reads the settings the user sees."""
    return trigger.click(
        settings_from_widgets,
        panel.inputs,
        target if target is not None else panel.settings_json,
        queue=False,
        api_name=False,
        show_progress="hidden",
    )
