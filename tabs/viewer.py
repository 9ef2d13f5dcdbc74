"""The 3D result viewer every tab shares: a read-only gr.Model3D hidden while empty, fed a per-session copy of a run's
mesh turned to a three-quarter view (the downloadable file stays as the pipeline wrote it)."""

from __future__ import annotations

import json
import math
import shutil
import struct
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from .context import AppContext

VIEWER_BACKGROUND = (0.93, 0.93, 0.95, 1.0)
HIDE_WHEN_EMPTY = "studio-hide-empty"
"""The class of outputs the app's CSS hides while they show Gradio's "Empty value" placeholder: the block stays in the
page (a Model3D that an update makes visible together with its value draws no canvas in Gradio 6.31), so the canvas
is made when the value comes, in a block that is shown."""

THREE_QUARTER_DEG = (35.0, 15.0)
"""(yaw about the up axis, tilt of the top towards the viewer) in degrees, baked into the viewer's copy of a GLB.
Gradio's viewer frames the whole object from the front (+Z, 15° above); turned by these, it shows the front, one
side and the top, as from 35° to the side and 30° above. An explicit `camera_position` is not used: any in Gradio 6.31
leaves the canvas blank."""

THREE_QUARTER = (None, None, None)
"""The Model3D camera the viewers open with: Gradio's own, which frames the whole object (the three-quarter view is
baked into the file, see `THREE_QUARTER_DEG`)."""

_GLB_MAGIC = b"glTF"
_JSON_CHUNK = 0x4E4F534A


def model3d(
    label: str,
    elem_id: str,
    height: int = 400,
    interactive: bool | None = False,
    camera_position: tuple[float | None, float | None, float | None] = THREE_QUARTER,
    visible: bool = True,
) -> gr.Model3D:
    """A 3D viewer for a result (GLB/OBJ/PLY), with an explicit height, the studio's background, Gradio's framing
    camera, and no upload area or clear button (`interactive=False`, the default: every viewer in the studio shows a
    result). It is hidden while empty (the app's CSS, see `HIDE_WHEN_EMPTY`); feed it through `show_in_viewer`."""
    return gr.Model3D(
        label=label,
        height=height,
        clear_color=VIEWER_BACKGROUND,
        elem_id=elem_id,
        elem_classes=[HIDE_WHEN_EMPTY],
        interactive=interactive,
        camera_position=camera_position,
        visible=visible,
    )


def refresh_on_select(tab: gr.Tab, *viewers: gr.Model3D) -> None:
    """gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): re-send on select."""
    for viewer in viewers:
        tab.select(lambda value: value, viewer, viewer, api_name=False)


def viewer_file(ctx: AppContext, request: gr.Request | None, path: str | Path) -> str:
    """A copy of `path` in the session's folder for a 3D viewer, a GLB turned to the three-quarter view
    (`THREE_QUARTER_DEG`); other formats are copied as they are.

    Hand it to the `gr.Model3D` through a `gr.State` and a chained `.then(lambda p: p, state, model)`: when a
    streaming (generator) event updates a Model3D together with other outputs such as a `gr.File`, Gradio 6.31
    leaves the viewer empty (no canvas); a plain chained event shows it.
    """
    src = Path(path)
    dest_dir = ctx.session_dir(getattr(request, "session_hash", None)) / "viewer"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{uuid.uuid4().hex[:8]}-{src.name}"
    if src.suffix.lower() == ".glb":
        try:
            dest.write_bytes(turned_glb(src.read_bytes(), *THREE_QUARTER_DEG))
            return str(dest)
        except ValueError:  # not a glTF 2 binary after all: show it as it is
            pass
    shutil.copyfile(src, dest)
    return str(dest)


def turned_in_place(path: str | Path) -> str:
    """A viewer-only GLB (such as a live preview's, made afresh for the viewer) turned to the three-quarter view where
    it lies; returns its path as text. Other files are left as they are."""
    target = Path(path)
    if target.suffix.lower() == ".glb":
        try:
            target.write_bytes(turned_glb(target.read_bytes(), *THREE_QUARTER_DEG))
        except ValueError:
            pass
    return str(target)


def show_in_viewer(event: Any, state: gr.State, viewer: gr.Model3D, keep_when_empty: bool = False) -> Any:
    """Chains the hand-over of a viewer file from `state` to `viewer` after `event` (see `viewer_file`).

    With `keep_when_empty`, an empty state (a run stopped before its mesh) leaves the viewer showing what it had."""
    if keep_when_empty:
        return event.then(lambda path: path or gr.skip(), state, viewer, api_name=False)
    return event.then(lambda path: path, state, viewer, api_name=False)


def turn_quaternion(yaw_deg: float, tilt_deg: float) -> tuple[float, float, float, float]:
    """The glTF rotation (x, y, z, w) that turns a model by `yaw_deg` about +Y, then by `tilt_deg` about +X (which
    brings its top towards a viewer on +Z): q = q_x(tilt) * q_y(yaw)."""
    ax, aw = math.sin(math.radians(tilt_deg) / 2), math.cos(math.radians(tilt_deg) / 2)
    by, bw = math.sin(math.radians(yaw_deg) / 2), math.cos(math.radians(yaw_deg) / 2)
    return (bw * ax, aw * by, ax * by, aw * bw)


def turned_glb(data: bytes, yaw_deg: float, tilt_deg: float) -> bytes:
    """A GLB (glTF 2 binary) whose scenes sit under one new root node rotated by `turn_quaternion`; meshes, buffers,
    materials and textures are untouched (the binary chunk is copied byte for byte). ValueError if it is no GLB."""
    if len(data) < 20:
        raise ValueError("too short for a GLB")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    json_length, chunk_type = struct.unpack_from("<II", data, 12)
    if magic != _GLB_MAGIC or version != 2 or chunk_type != _JSON_CHUNK or 20 + json_length > min(length, len(data)):
        raise ValueError("not a glTF 2 binary")
    try:
        gltf = json.loads(data[20 : 20 + json_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"unreadable glTF JSON: {err}") from None
    nodes = gltf.setdefault("nodes", [])
    rotation = list(turn_quaternion(yaw_deg, tilt_deg))
    for scene in gltf.get("scenes", []):
        nodes.append({"name": "studio-three-quarter", "rotation": rotation, "children": scene.get("nodes", [])})
        scene["nodes"] = [len(nodes) - 1]
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; glTF pads JSON with spaces
    rest = data[20 + json_length : length]
    header = struct.pack("<4sII", _GLB_MAGIC, 2, 20 + len(text) + len(rest))
    return header + struct.pack("<II", len(text), _JSON_CHUNK) + text + rest
