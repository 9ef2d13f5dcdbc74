"""Shading lab tab: shaders, lights, materials, cameras and raster settings; buffers, lighting terms, A/B, fitting,
rotations and turntables."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.core.config import make_preset
from pipelines.core.device import default_preset
from pipelines.core.events import to_uint8
from pipelines.render import rendering, rotations
from pipelines.shading import fit as shading_fit
from pipelines.shading import lab as shading
from pipelines.shading import points as shading_points
from pipelines.shading import turntable as shading_turntable

from .context import AppContext
from .stream import LATEX, run_panel, stop_button, stream, upload_paths

LESSON = r"""
**What a renderer does.** The *rasteriser* finds, for every pixel, the faces that cover it: their index
(`pix_to_face`), depth (`zbuf`), the pixel's barycentric coordinates $(b_0, b_1, b_2)$ inside each face
($b_i \ge 0$, $\sum_i b_i = 1$) and its signed distance to the face's edge. The *shader* turns these into a colour.
A hard rasteriser keeps the nearest face ($K = 1$); PyTorch3D's soft rasteriser keeps the $K$ nearest faces within
a blur radius, which makes edges differentiable.

**Lambert (diffuse).** A matte surface looks equally bright from every direction; its brightness follows the cosine
between the normal $\mathbf n$ and the direction to the light $\mathbf l$:
$$I_d = k_d \, L_d \, \max(0,\ \mathbf n \cdot \mathbf l).$$

**Phong.** Add a constant ambient term and a highlight around the mirror direction
$\mathbf r = 2(\mathbf n\cdot\mathbf l)\,\mathbf n - \mathbf l$, seen from the viewing direction $\mathbf v$:
$$C = \big(k_a L_a + k_d L_d \max(0, \mathbf n\cdot\mathbf l)\big)\odot c_\text{texture} + k_s L_s \max(0, \mathbf r\cdot\mathbf v)^{\alpha}.$$
$k_a, k_d, k_s$ are the material's reflectances, $L_a, L_d, L_s$ the light's colours, $\alpha$ the shininess. The
specular term is not multiplied by the texture, so highlights take the light's colour. A directional light has
the same $\mathbf l$ everywhere; an ambient light only contributes $k_a L_a$.

**Where lighting is evaluated.** *Flat*: once per face (face normal, face centre). *Gouraud*: at the vertices,
then colours are interpolated (cheap, but highlights smear or vanish between vertices). *Phong*: normals are
interpolated and lighting is computed per pixel.

**Soft blending.** Each of the $K$ faces gets a coverage probability $D_j = \operatorname{sigmoid}(-d_j/\sigma)$
from its squared distance $d_j$ to the pixel; colours are mixed with weights $D_j \exp(z_j/\gamma)$ (nearer faces
dominate as $\gamma \to 0$) plus the background, and the silhouette is $A = 1 - \prod_j (1 - D_j)$. The book uses
$\sigma = 10^{-4}$ and blur radius $\log(1/10^{-4} - 1)\,\sigma$, where $D_j$ falls to $10^{-4}$.

**Memory.** The soft rasteriser keeps $N \cdot H \cdot W \cdot K$ face slots. The lab estimates 48 bytes per slot
(4 images of $512^2$ with $K = 50$: about 2.3 GiB) and refuses, or lowers $K$ and then the size, when the estimate
exceeds the budget. The fragments alone take 28 bytes per slot; shading them takes several times more.

**Rotations.** A rotation vector $\boldsymbol\omega$ (axis times angle $\theta$) maps to a matrix by the exponential
map $R = \exp([\boldsymbol\omega]_\times) = I + \frac{\sin\theta}{\theta}[\boldsymbol\omega]_\times +
\frac{1-\cos\theta}{\theta^2}[\boldsymbol\omega]_\times^2$ (`so3_exp_map`), where the *hat* operator
$[\boldsymbol\omega]_\times$ is the skew matrix with $[\boldsymbol\omega]_\times \mathbf x = \boldsymbol\omega \times
\mathbf x$; `so3_log_map` inverts it. A unit quaternion $(\cos\frac\theta2, \sin\frac\theta2\,\mathbf u)$ and
three Euler angles describe the same rotation. `Transform3d` multiplies row vectors, $\mathbf x' = \mathbf x M$.

**The point-set exercise.** Given pairs $(\mathbf x_i, \mathbf y_i)$ with $\mathbf y_i = R\mathbf x_i + \mathbf t$,
minimise $\frac1N\sum_i \lVert R\mathbf x_i + \mathbf t - \mathbf y_i\rVert^2$ over $\mathbf t$ (and $\boldsymbol\omega$)
by SGD with momentum [lr 0.1, momentum 0.9, 200 steps, 5000 points].
"""

TERMS_FORMULA = r"""
$C = \underbrace{k_a L_a \odot c}_{\text{ambient}} + \underbrace{k_d L_d \max(0,\mathbf n\cdot\mathbf l)\odot c}_{\text{diffuse (Lambert)}}
+ \underbrace{k_s L_s \max(0,\mathbf r\cdot\mathbf v)^{\alpha}}_{\text{specular (Phong)}}$ + background where the
mesh does not (fully) cover the pixel. The images below are these terms after the same blending as the shader;
they add up to the render exactly.
"""

FILE_TYPES = [".obj", ".mtl", ".png", ".jpg", ".jpeg", ".ply", ".glb", ".gltf", ".bin", ".stl", ".off", ".zip"]
BUFFER_CAPTIONS = {
    "depth": "depth (zbuf, near = bright)",
    "pix_to_face": "pix_to_face (a colour per face)",
    "barycentric": "barycentric coordinates as RGB",
    "normals": "world normals, (n + 1) / 2",
    "silhouette": "silhouette alpha (sigmoid blend)",
}
TERM_CAPTIONS = ("ambient", "diffuse", "specular", "background", "sum")


def _settings(value: Any) -> shading.RenderSettings:
    """RenderSettings from the API's/UI's settings (a dict, JSON text or None); gr.Error on bad values."""
    try:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else None
        return shading.RenderSettings.from_dict(value)
    except json.JSONDecodeError as err:
        raise gr.Error(f"The settings are not valid JSON: {err.msg}.", title="Render settings") from None
    except (TypeError, ValueError) as err:
        raise gr.Error(str(err), title="Render settings") from None


def settings_from_widgets(*values: Any) -> dict[str, Any]:
    """The settings dict from the widgets' values, in WIDGET_ORDER."""
    v = dict(zip(WIDGET_ORDER, values))
    xyz = (v.pop("light_x"), v.pop("light_y"), v.pop("light_z"))
    v["light_xyz"] = [float(c) if c is not None else 0.0 for c in xyz]
    for key in (
        "light_ambient",
        "light_diffuse",
        "light_specular",
        "material_ambient",
        "material_diffuse",
        "material_specular",
        "background",
    ):
        try:
            v[key] = [round(c, 4) for c in rendering.parse_color(v[key], key)]
        except ValueError:
            v[key] = getattr(shading.RenderSettings(), key)
    return v


WIDGET_ORDER = (
    "shader", "light", "light_x", "light_y", "light_z", "light_ambient", "light_diffuse", "light_specular",
    "material_ambient", "material_diffuse", "material_specular", "shininess",
    "camera", "dist", "elev", "azim", "fov", "ortho_scale",
    "image_size", "blur_radius", "faces_per_pixel", "bin_size", "cull_backfaces", "sigma", "gamma",
    "background", "memory_budget_mb", "on_overflow",
)  # fmt: skip


def build(ctx: AppContext, tab: gr.Tab) -> None:
    defaults = shading.RenderSettings()
    preset_default = default_preset(ctx.device)
    staged: dict[str, str] = {}
    staged_lock = threading.Lock()

    def mesh_source(name: str | None, files: Any, request: gr.Request | None) -> str:
        """The mesh to render: the upload (staged once per file set) or the picked mesh."""
        from pipelines.files import mesh_io

        paths = list(upload_paths(files))
        if not paths:
            if not name:
                raise gr.Error("Pick a mesh or upload a 3D file.")
            return str(name)
        key_src = "|".join(f"{p}:{Path(p).stat().st_size if Path(p).exists() else 0}" for p in sorted(paths))
        key = hashlib.sha1(key_src.encode()).hexdigest()[:16]
        with staged_lock:
            if key in staged and Path(staged[key]).is_file():
                return staged[key]
        dest = ctx.session_dir(getattr(request, "session_hash", None)) / "shading" / key
        try:
            main = mesh_io.stage_upload(paths, dest, mesh_io.Limits(max_upload_mb=ctx.max_upload_mb))
        except ValueError as err:
            raise gr.Error(str(err), title="Upload") from None
        with staged_lock:
            if len(staged) > 64:
                staged.clear()
            staged[key] = str(main)
        return str(main)

    def load(name: str | None, files: Any, request: gr.Request | None):
        source = mesh_source(name, files, request)
        try:
            return shading.load_mesh_with_notes(source, ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Mesh") from None

    with gr.Accordion("Lesson: rasterising, Lambert and Phong, soft blending, rotations", open=False):
        gr.Markdown(
            LESSON,
            latex_delimiters=LATEX,
        )

    with gr.Row():
        with gr.Column(scale=1, min_width=330):
            mesh = gr.Dropdown(shading.mesh_choices(), value="ico-sphere", label="Mesh", elem_id="shading-mesh")
            files = gr.File(
                label="…or upload a mesh (OBJ + MTL + texture, PLY, GLB, STL, OFF, or a zip)",
                file_count="multiple",
                file_types=FILE_TYPES,
            )
            shader = gr.Radio(list(rendering.SHADERS), value=defaults.shader, label="Shader", elem_id="shading-shader")
            with gr.Accordion("Light", open=True):
                light = gr.Radio(
                    list(rendering.LIGHTS),
                    value=defaults.light,
                    label="Light (point: position; directional: towards the light)",
                )
                with gr.Row():
                    lx = gr.Slider(-6, 6, value=defaults.light_xyz[0], step=0.1, label="x")
                    ly = gr.Slider(-6, 6, value=defaults.light_xyz[1], step=0.1, label="y")
                    lz = gr.Slider(-6, 6, value=defaults.light_xyz[2], step=0.1, label="z")
                with gr.Row():
                    la = gr.ColorPicker(rendering.color_hex(defaults.light_ambient), label="Ambient L_a")
                    ld = gr.ColorPicker(rendering.color_hex(defaults.light_diffuse), label="Diffuse L_d")
                    ls = gr.ColorPicker(rendering.color_hex(defaults.light_specular), label="Specular L_s")
            with gr.Accordion("Material", open=False):
                with gr.Row():
                    ma = gr.ColorPicker(rendering.color_hex(defaults.material_ambient), label="Ambient k_a")
                    md = gr.ColorPicker(rendering.color_hex(defaults.material_diffuse), label="Diffuse k_d")
                    ms = gr.ColorPicker(rendering.color_hex(defaults.material_specular), label="Specular k_s")
                shininess = gr.Slider(1, 256, value=defaults.shininess, step=1, label="Shininess α")
            with gr.Accordion("Camera", open=False):
                camera = gr.Radio(list(rendering.CAMERAS), value=defaults.camera, label="Camera")
                dist = gr.Slider(1.0, 10.0, value=defaults.dist, step=0.1, label="Distance")
                elev = gr.Slider(-89, 89, value=defaults.elev, step=1, label="Elevation (°)")
                azim = gr.Slider(-180, 180, value=defaults.azim, step=1, label="Azimuth (°)")
                fov = gr.Slider(10, 120, value=defaults.fov, step=1, label="Field of view (°), perspective")
                ortho = gr.Slider(0.2, 3.0, value=defaults.ortho_scale, step=0.05, label="Scale, orthographic")
            with gr.Accordion("Rasteriser and blending", open=False):
                image_size = gr.Slider(32, 1024, value=defaults.image_size, step=32, label="Image size (px)")
                faces_pp = gr.Slider(1, 100, value=defaults.faces_per_pixel, step=1, label="Faces per pixel K")
                with gr.Row():
                    blur = gr.Number(defaults.blur_radius, label="Blur radius (NDC²)", minimum=0, maximum=2, step=1e-4)
                    bin_size = gr.Number(
                        defaults.bin_size, label="Bin size (−1 auto, 0 naive)", precision=0, minimum=-1
                    )
                with gr.Row():
                    sigma = gr.Number(defaults.sigma, label="σ (edge softness)", minimum=1e-8, step=1e-5)
                    gamma = gr.Number(defaults.gamma, label="γ (depth softness)", minimum=1e-8, step=1e-5)
                cull = gr.Checkbox(defaults.cull_backfaces, label="Cull back faces")
                book_soft = gr.Button(
                    "Use the book's soft settings (σ = 1e-4, blur = log(1/1e-4 − 1)·σ, K = 50)", size="sm"
                )
            background = gr.ColorPicker(rendering.color_hex(defaults.background), label="Background")
            with gr.Accordion("Memory guard", open=False):
                budget = gr.Number(defaults.memory_budget_mb, label="Budget for the rasteriser (MiB)", minimum=1)
                overflow = gr.Radio(list(shading.OVERFLOW_MODES), value=defaults.on_overflow, label="Over budget")
            live = gr.Checkbox(True, label="Re-render when a setting changes")
            settings_json = gr.JSON(
                defaults.to_dict(),
                label="Settings (the API's `settings` argument)",
                open=False,
                elem_id="shading-settings",
            )

        widgets = [shader, light, lx, ly, lz, la, ld, ls, ma, md, ms, shininess, camera, dist, elev, azim, fov, ortho,
                   image_size, blur, faces_pp, bin_size, cull, sigma, gamma, background, budget, overflow]  # fmt: skip
        assert len(widgets) == len(WIDGET_ORDER)

        with gr.Column(scale=2):
            with gr.Tabs():
                with gr.Tab("Render"):
                    render_btn = gr.Button("Render", variant="primary", elem_id="shading-render-btn")
                    image = gr.Image(
                        label="Render", type="numpy", interactive=False, height=460, elem_id="shading-image"
                    )
                    info = gr.JSON(label="Render info (time, memory estimate, notes)", elem_id="shading-info")
                with gr.Tab("Buffers and terms"):
                    buffers_btn = gr.Button("Show buffers and lighting terms", variant="primary")
                    buffers_gallery = gr.Gallery(
                        label="Rasteriser buffers", columns=5, height=260, object_fit="contain"
                    )
                    gr.Markdown(TERMS_FORMULA, latex_delimiters=LATEX)
                    terms_gallery = gr.Gallery(
                        label="Lighting terms (they sum to the render)", columns=5, height=260, object_fit="contain"
                    )
                    buffers_info = gr.JSON(label="Buffer statistics and the terms' reconstruction error")
                with gr.Tab("A/B compare"):
                    gr.Markdown(
                        "Freeze the current settings as A, change something, freeze them as B, compare on the same mesh."
                    )
                    with gr.Row():
                        set_a = gr.Button("Current settings → A")
                        set_b = gr.Button("Current settings → B")
                    with gr.Row():
                        settings_a = gr.JSON(defaults.to_dict(), label="A", open=False)
                        settings_b = gr.JSON(
                            shading.RenderSettings(shader="hard-gouraud").to_dict(), label="B", open=False
                        )
                    gain = gr.Slider(1, 20, value=4, step=1, label="Difference gain")
                    compare_btn = gr.Button("Compare", variant="primary")
                    with gr.Row():
                        img_a = gr.Image(label="A", type="numpy", interactive=False)
                        img_b = gr.Image(label="B", type="numpy", interactive=False)
                        img_diff = gr.Image(label="|A − B| × gain", type="numpy", interactive=False)
                    compare_info = gr.JSON(label="Difference")
                with gr.Tab("Optimisation"):
                    _fit_section(ctx, preset_default)
                    _points_section(ctx, preset_default)
                with gr.Tab("Rotations"):
                    gr.Markdown(
                        "Type a rotation in any form; see it in every form, the round-trip errors, and the mesh before and after `Transform3d`."
                    )
                    with gr.Row():
                        rot_mesh = gr.Dropdown(
                            shading.mesh_choices(), value="torus", label="Mesh (an upload above takes precedence)"
                        )
                        representation = gr.Radio(
                            list(rotations.REPRESENTATIONS), value="euler", label="Representation"
                        )
                        convention = gr.Dropdown(
                            list(rotations.EULER_CONVENTIONS), value="XYZ", label="Euler convention"
                        )
                    rot_values = gr.Textbox(
                        "30, 45, 0",
                        label="Values: axis-angle 3 (rotation vector, rad) or 4 (axis, angle °); matrix 9 (rows); quaternion w x y z; Euler 3 (°)",
                    )
                    translation = gr.Textbox("0, 0, 0", label="Translation x, y, z (applied after the rotation)")
                    rot_btn = gr.Button("Convert and apply", variant="primary")
                    rot_image = gr.Image(label="Before | after", type="numpy", interactive=False)
                    rot_info = gr.JSON(label="The rotation in every form, and round-trip errors")
                with gr.Tab("Turntable"):
                    with gr.Row():
                        tt_preset = gr.Radio(
                            ["tiny", "quick", "full"],
                            value=preset_default,
                            label="Preset (frames and size; full keeps the image size)",
                        )
                        frames = gr.Slider(4, 120, value=36, step=1, label="Frames per turn")
                        fps = gr.Slider(2, 30, value=12, step=1, label="Frames per second")
                    formats = gr.CheckboxGroup(
                        list(shading_turntable.FORMATS), value=list(shading_turntable.FORMATS), label="Formats"
                    )
                    with gr.Row():
                        tt_btn = gr.Button("Render turntable", variant="primary")
                        stop_button(ctx, "shading_turntable")
                    tt_panel = run_panel(curves=False, preview_label="Latest frame")
                    with gr.Row():
                        tt_video = gr.Video(label="MP4", interactive=False, height=320)
                        tt_gif = gr.Image(label="GIF", type="filepath", interactive=False, height=320)

    # --- settings: widgets -> JSON (cheap, unqueued); JSON change -> debounced render ---
    slider_like = (lx, ly, lz, shininess, dist, elev, azim, fov, ortho, image_size, faces_pp)
    instant = [w for w in widgets if w not in slider_like]
    triggers = [w.release for w in slider_like] + [w.change for w in instant if not isinstance(w, gr.Number)]
    triggers += [w.submit for w in instant if isinstance(w, gr.Number)] + [
        w.blur for w in instant if isinstance(w, gr.Number)
    ]
    gr.on(triggers, settings_from_widgets, widgets, settings_json, queue=False, api_name=False, show_progress="hidden")

    def _book_soft():
        s = shading.RenderSettings.book_soft()
        return s.shader, s.blur_radius, s.faces_per_pixel, s.sigma, s.gamma

    book_soft.click(_book_soft, None, [shader, blur, faces_pp, sigma, gamma], queue=False, api_name=False).then(
        settings_from_widgets, widgets, settings_json, queue=False, api_name=False
    )

    def render_image(name, file_list, settings, request: gr.Request):
        """/render: mesh name (or uploaded files) and a settings dict -> image (uint8) and info."""
        s = _settings(settings)
        meshes, notes = load(name, file_list, request)
        try:
            result = shading.render(meshes, s, device=ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot render") from None
        out = result.info()
        out["notes"] = notes + out["notes"]
        out["faces"] = int(meshes.num_faces_per_mesh()[0])
        out["vertices"] = int(meshes.num_verts_per_mesh()[0])
        return to_uint8(result.image[0]), out

    render_btn.click(
        settings_from_widgets, widgets, settings_json, queue=False, api_name=False, show_progress="hidden"
    ).then(render_image, [mesh, files, settings_json], [image, info], api_name="render", concurrency_id="gpu")

    def live_render(on, name, file_list, settings, request: gr.Request):
        if not on:
            return gr.skip(), gr.skip()
        return render_image(name, file_list, settings, request)

    gr.on(
        [settings_json.change, mesh.change, files.change],
        live_render,
        [live, mesh, files, settings_json],
        [image, info],
        api_name=False,
        concurrency_id="gpu",
        trigger_mode="always_last",
        show_progress="minimal",
    )

    def render_buffers(name, file_list, settings, request: gr.Request):
        """/render_buffers: buffers gallery, lighting-terms gallery and statistics."""
        s = _settings(settings)
        meshes, notes = load(name, file_list, request)
        try:
            buf = shading.buffers(meshes, s, device=ctx.device)
            terms = None if s.shader == "soft-silhouette" else shading.shading_terms(meshes, s, device=ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot render") from None
        gallery = [(to_uint8(img), BUFFER_CAPTIONS[k]) for k, img in buf["images"].items()]
        summary = {**buf["summary"], "notes": notes + buf["summary"]["notes"]}
        term_gallery = []
        if terms is None:
            summary["terms"] = "The silhouette shader has no lighting terms: pick a Phong, Gouraud or flat shader."
        else:
            t = terms["terms"]
            term_gallery = [(to_uint8(t[k]), k if k != "sum" else "sum = the render") for k in TERM_CAPTIONS]
            summary["terms_max_abs_error_vs_shader"] = float(f"{float((t['sum'] - t['final']).abs().max()):.3g}")
            summary["terms_mean"] = {
                k: round(float(t[k].mean()), 5) for k in ("ambient", "diffuse", "specular", "background")
            }
        return gallery, term_gallery, summary

    buffers_btn.click(
        settings_from_widgets, widgets, settings_json, queue=False, api_name=False, show_progress="hidden"
    ).then(
        render_buffers,
        [mesh, files, settings_json],
        [buffers_gallery, terms_gallery, buffers_info],
        api_name="render_buffers",
        concurrency_id="gpu",
    )

    set_a.click(settings_from_widgets, widgets, settings_a, queue=False, api_name=False)
    set_b.click(settings_from_widgets, widgets, settings_b, queue=False, api_name=False)

    def render_compare(name, file_list, a, b, g, request: gr.Request):
        """/render_compare: images A, B, |A - B| x gain, and statistics."""
        sa, sb = _settings(a), _settings(b)
        meshes, _ = load(name, file_list, request)
        try:
            out = shading.compare(meshes, sa, sb, gain=float(g or 1.0), device=ctx.device)
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot compare") from None
        return to_uint8(out["a"]), to_uint8(out["b"]), to_uint8(out["diff"]), out["stats"]

    compare_btn.click(
        render_compare,
        [mesh, files, settings_a, settings_b, gain],
        [img_a, img_b, img_diff, compare_info],
        api_name="render_compare",
        concurrency_id="gpu",
    )

    def rotate(name, file_list, settings, rep, values, conv, trans, request: gr.Request):
        """/rotations: before | after image and the rotation in every representation."""
        s = _settings(settings)
        try:
            matrix, notes = rotations.to_matrix(rep, values or "", conv or "XYZ")
            t = rotations.parse_numbers(trans or "0, 0, 0")
            if len(t) != 3:
                raise ValueError("The translation takes three numbers x, y, z.")
            described = rotations.describe(matrix, conv or "XYZ", t)
        except ValueError as err:
            raise gr.Error(str(err), title="Rotation") from None
        meshes, _ = load(name, file_list, request)
        moved = rotations.apply_to_mesh(meshes.to(ctx.device), matrix.to(ctx.device), t)
        try:
            before = shading.render(meshes, s, device=ctx.device).image[0]
            after = shading.render(moved, s, device=ctx.device).image[0]
        except ValueError as err:
            raise gr.Error(str(err), title="Cannot render") from None
        described["notes"] = notes
        return to_uint8(rendering.image_grid([before, after], cols=2, pad=4, fill=0.5)), described

    rot_btn.click(
        settings_from_widgets, widgets, settings_json, queue=False, api_name=False, show_progress="hidden"
    ).then(
        rotate,
        [rot_mesh, files, settings_json, representation, rot_values, convention, translation],
        [rot_image, rot_info],
        api_name="rotations",
        concurrency_id="gpu",
    )

    def turntable(name, file_list, settings, preset, n_frames, rate, fmts, request: gr.Request):
        """/turntable: streams frames; GIF and MP4 at the end."""
        s = _settings(settings)
        if not fmts:
            raise gr.Error("Pick at least one format (gif or mp4).")
        source = mesh_source(name, file_list, request)
        base = make_preset(shading_turntable.Config, preset or preset_default)
        cfg = dataclasses.replace(
            base,
            mesh=source,
            settings=json.dumps(s.to_dict()),
            frames=int(n_frames),
            fps=float(rate),
            formats=tuple(fmts),
            device=str(ctx.device),
        )
        if preset == "full":
            cfg = dataclasses.replace(cfg, image_size=0)

        def on_done(done) -> dict:
            return {
                tt_video: str(done.files["mp4"]) if "mp4" in done.files else None,
                tt_gif: str(done.files["gif"]) if "gif" in done.files else None,
            }

        yield from stream(
            ctx,
            tt_panel,
            "shading-turntable",
            cfg,
            preset=preset,
            request=request,
            tab="shading_turntable",
            on_done=on_done,
        )

    tt_btn.click(
        settings_from_widgets, widgets, settings_json, queue=False, api_name=False, show_progress="hidden"
    ).then(
        turntable,
        [mesh, files, settings_json, tt_preset, frames, fps, formats],
        [*tt_panel.outputs, tt_video, tt_gif],
        api_name="turntable",
        concurrency_id="gpu",
        concurrency_limit=1,
    )


def _fit_section(ctx: AppContext, preset_default: str) -> dict:
    gr.Markdown(
        "### Fit a parameter to target renders\nA heterogeneous batch (meshes of different sizes, one view each) is rendered at a hidden "
        "value; the optimiser starts elsewhere (seeded) and descends the mean squared RGBA error. Light positions use the hard "
        "Phong shader; translation and scale need the soft rasteriser, whose blurred edges carry gradients."
    )
    with gr.Row():
        target = gr.Radio(list(shading_fit.TARGETS), value="light", label="Parameter")
        meshes = gr.CheckboxGroup(shading.mesh_choices(), value=list(shading_fit.Config().meshes), label="Batch")
    with gr.Row():
        preset = gr.Radio(["tiny", "quick", "full"], value=preset_default, label="Preset")
        steps = gr.Number(0, label="Steps (0: the preset's)", precision=0, minimum=0, maximum=5000)
        lr = gr.Number(0, label="Learning rate (0: the target's default)", minimum=0)
        optimizer = gr.Radio(list(shading_fit.OPTIMIZERS), value="adam", label="Optimiser")
    with gr.Row():
        go_btn = gr.Button("Fit", variant="primary")
        stop_button(ctx, "shading_fit")
    panel = run_panel(preview_label="Targets (top), current (middle), |difference| (bottom)")
    batch = gr.JSON(label="The batch as list, padded and packed tensors")

    def fit(tgt, names, pre, n_steps, rate, opt, request: gr.Request):
        """/shading_fit: streams the fit; metrics, comparison image and history at the end."""
        if not names:
            raise gr.Error("Pick at least one mesh for the batch.")
        if rate is not None and rate < 0:
            raise gr.Error("The learning rate must be positive (0 for the target's default).")
        cfg = dataclasses.replace(
            make_preset(shading_fit.Config, pre or preset_default),
            target=tgt,
            meshes=tuple(names),
            optimizer=opt,
            device=str(ctx.device),
        )
        if n_steps:
            cfg = dataclasses.replace(cfg, steps=int(n_steps))
        if rate:
            cfg = dataclasses.replace(cfg, lr=float(rate))

        def on_done(done) -> dict:
            return {batch: {"fit": done.info["result"], **done.info["batch"], "notes": done.info["notes"]}}

        yield from stream(
            ctx, panel, "shading-fit", cfg, preset=pre, request=request, tab="shading_fit", on_done=on_done
        )

    go_btn.click(
        fit,
        [target, meshes, preset, steps, lr, optimizer],
        [*panel.outputs, batch],
        api_name="shading_fit",
        concurrency_id="gpu",
        concurrency_limit=1,
    )
    return {"button": go_btn}


def _points_section(ctx: AppContext, preset_default: str) -> dict:
    gr.Markdown(
        "### The book's exercise: align two point sets\nPoints sampled on a surface are moved by a hidden translation (and "
        "rotation); gradient descent recovers it from the paired points [SGD lr 0.1, momentum 0.9, 200 steps, 5000 points]."
    )
    with gr.Row():
        preset = gr.Radio(
            ["tiny", "quick", "full"], value="full", label="Preset (quick and full are the book's settings)"
        )
        n_points = gr.Number(5000, label="Points", precision=0, minimum=3, maximum=200_000)
        steps = gr.Number(200, label="Steps", precision=0, minimum=1, maximum=10_000)
        lr = gr.Number(0.1, label="Learning rate", minimum=0)
        momentum = gr.Number(0.9, label="Momentum", minimum=0, maximum=0.999)
    with gr.Row():
        fit_rotation = gr.Checkbox(False, label="Also recover a rotation (so3_exp_map of a rotation vector)")
        noise = gr.Number(0.0, label="Noise on the target (std)", minimum=0, maximum=1)
    with gr.Row():
        go_btn = gr.Button("Align", variant="primary")
        stop_button(ctx, "shading_points")
    panel = run_panel(preview=False)
    plot = gr.Plot(label="Source (grey), current (orange), target (blue)")

    def align(pre, n, n_steps, rate, mom, rot, sd, request: gr.Request):
        """/shading_points: streams the alignment; the translation error at the end."""
        if not (n and n >= 3 and n_steps and n_steps >= 1):
            raise gr.Error("Use at least 3 points and 1 step.")
        if not (rate and rate > 0) or mom is None or not 0 <= mom < 1:
            raise gr.Error("The learning rate must be positive and the momentum in [0, 1).")
        base = make_preset(shading_points.Config, pre or "full")
        cfg = dataclasses.replace(
            base,
            n_points=int(n),
            steps=int(n_steps),
            lr=float(rate),
            momentum=float(mom),
            fit_rotation=bool(rot),
            noise=float(sd or 0),
            device=str(ctx.device),
        )
        if pre == "tiny":
            cfg = dataclasses.replace(cfg, n_points=base.n_points, steps=base.steps)

        def on_preview(event) -> dict:
            return {plot: event.figure} if event.figure is not None else {}

        def on_done(done) -> dict:
            return {plot: done.info["figure"]}

        yield from stream(
            ctx,
            panel,
            "shading-points",
            cfg,
            preset=pre,
            request=request,
            tab="shading_points",
            on_preview=on_preview,
            on_done=on_done,
        )

    go_btn.click(
        align,
        [preset, n_points, steps, lr, momentum, fit_rotation, noise],
        [*panel.outputs, plot],
        api_name="shading_points",
        concurrency_id="gpu",
        concurrency_limit=1,
    )
    return {"button": go_btn}
