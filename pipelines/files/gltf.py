"""GLB / glTF reader: container, buffers, accessors and images validated before trimesh builds the scene."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.files.types import MB, Limits, LoadedAsset, MeshFileError, cap_text, short_reason
from pipelines.files.upload import image_size, resolve_reference, trimesh_resolver

if TYPE_CHECKING:
    import PIL.Image

_GLB_MAGIC, _CHUNK_JSON, _CHUNK_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_COMPONENT_SIZE = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_UNSUPPORTED_EXT = ("KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_mesh_quantization_unsupported")
# 1x1 mid-grey PNG put in place of images that may not be read, so image indices stay valid for trimesh
_PLACEHOLDER_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNoaGgAAAMEAYFL09IQAAAAAElFTkSuQmCC"
)


def read_gltf_json(path: Path) -> tuple[dict, bytes | None]:
    """The glTF JSON document and the GLB binary chunk (None for .gltf), with container sizes checked."""
    data = path.read_bytes()
    if path.suffix.lower() == ".gltf":
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as e:
            raise MeshFileError(f"{path.name} is not a valid glTF file (its JSON does not parse).") from e
        if not isinstance(doc, dict):
            raise MeshFileError(f"{path.name} is not a valid glTF file (the JSON is not an object).")
        return doc, None
    if len(data) < 20:
        raise MeshFileError(f"{path.name} is too short to be a GLB file.")
    magic, version, length = (int(x) for x in np.frombuffer(data[:12], dtype="<u4"))
    if magic != _GLB_MAGIC:
        raise MeshFileError(f"{path.name} is not a GLB file (it does not start with 'glTF').")
    if version != 2:
        raise MeshFileError(f"{path.name} is a glTF {version} file; only glTF 2.0 is supported.")
    if length > len(data):
        raise MeshFileError(f"{path.name} is truncated: its header declares {length:,} bytes but it has {len(data):,}.")
    pos, doc, binary = 12, None, None
    while pos + 8 <= length:
        chunk_len, chunk_type = (int(x) for x in np.frombuffer(data[pos : pos + 8], dtype="<u4"))
        if pos + 8 + chunk_len > length:
            raise MeshFileError(f"{path.name} is truncated: a chunk runs past the end of the file.")
        chunk = data[pos + 8 : pos + 8 + chunk_len]
        if doc is None:
            if chunk_type != _CHUNK_JSON:
                raise MeshFileError(f"{path.name} is not a valid GLB file (the first chunk is not JSON).")
            try:
                doc = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise MeshFileError(f"{path.name} has a JSON chunk that does not parse.") from e
        elif chunk_type == _CHUNK_BIN and binary is None:
            binary = chunk
        pos += 8 + chunk_len
    if not isinstance(doc, dict):
        raise MeshFileError(f"{path.name} has no JSON chunk.")
    return doc, binary


def _data_uri_bytes(uri: str) -> bytes:
    import base64
    import binascii

    head, _, payload = uri.partition(",")
    if ";base64" not in head:
        from urllib.parse import unquote_to_bytes

        return unquote_to_bytes(payload)
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError) as e:
        raise MeshFileError("A glTF data URI is not valid base64.") from e


def _gltf_check(doc: dict, path: Path, binary: bytes | None, root: Path, limits: Limits) -> tuple[list, list[str]]:
    """Validate buffers, views, accessors and images before trimesh allocates; returns (buffers, warnings).

    Images that are missing, outside the upload or too large are replaced in `doc` by a 1x1 placeholder and
    unlinked from materials, so nothing refers to them afterwards.
    """
    name = path.name
    version = str(doc.get("asset", {}).get("version", "2.0"))
    if not version.startswith("2"):
        raise MeshFileError(f"{name} is a glTF {version} file; only glTF 2.0 is supported.")
    required = [e for e in doc.get("extensionsRequired", []) if e in _UNSUPPORTED_EXT]
    if required:
        raise MeshFileError(f"{name} uses compressed geometry ({required[0]}), which this app cannot decode.")
    buffers, sizes = _check_buffers(doc, path, binary, root)
    _check_accessors(doc, name, sizes, limits)
    _check_counts(doc, name, limits)
    warnings = _check_images(doc, path, buffers, root, limits)
    return buffers, warnings


def _check_buffers(doc: dict, path: Path, binary: bytes | None, root: Path) -> tuple[list, list[int]]:
    """Each buffer's bytes (GLB chunk, data URI) or file (inside the upload), and its size in bytes."""
    name = path.name
    buffers: list[bytes | Path | None] = []
    sizes: list[int] = []
    for i, buf in enumerate(doc.get("buffers", [])):
        uri = buf.get("uri")
        if uri is None:
            if i != 0 or binary is None:
                raise MeshFileError(f"{name} refers to a binary buffer that the file does not contain.")
            buffers.append(binary)
            sizes.append(len(binary))
        elif uri.startswith("data:"):
            blob = _data_uri_bytes(uri)
            buffers.append(blob)
            sizes.append(len(blob))
        else:
            found, note = resolve_reference(uri, path.parent, root)
            if found is None:
                raise MeshFileError(f"{name} needs a buffer file that cannot be used: {note}.")
            buffers.append(found)
            sizes.append(found.stat().st_size)
    return buffers, sizes


def _check_accessors(doc: dict, name: str, sizes: list[int], limits: Limits) -> None:
    """Buffer views inside their buffers, accessors inside their views and within the limits."""
    views = doc.get("bufferViews", [])
    for k, view in enumerate(views):
        b = int(view["buffer"])
        off, length = int(view.get("byteOffset", 0)), int(view["byteLength"])
        if not 0 <= b < len(sizes) or off < 0 or length < 0 or off + length > sizes[b]:
            raise MeshFileError(f"{name} is damaged: buffer view {k} lies outside its buffer.")
    max_items = max(limits.max_vertices, 3 * limits.max_faces)
    for k, acc in enumerate(doc.get("accessors", [])):
        count = int(acc["count"])
        width = _TYPE_WIDTH[acc["type"]] * _COMPONENT_SIZE[int(acc["componentType"])]
        if count < 0 or count > max_items:
            raise MeshFileError(f"{name} declares an accessor of {count:,} items, above the limits.")
        if "bufferView" not in acc and count * width > 64 * MB:
            raise MeshFileError(f"{name} declares an accessor of {count:,} items with no data behind it.")
        if "bufferView" in acc:
            view = views[int(acc["bufferView"])]
            stride = int(view.get("byteStride", 0)) or width
            need = int(acc.get("byteOffset", 0)) + (count - 1) * stride + width if count else 0
            if need > int(view["byteLength"]):
                raise MeshFileError(f"{name} is damaged: accessor {k} reads past the end of its buffer view.")


def _check_counts(doc: dict, name: str, limits: Limits) -> None:
    """Vertices and triangles the meshes store, against the limits."""
    accessors = doc.get("accessors", [])
    n_verts = n_tris = 0
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            pos_acc = prim.get("attributes", {}).get("POSITION")
            if pos_acc is None:
                continue
            nv = int(accessors[int(pos_acc)]["count"])
            n_verts += nv
            if int(prim.get("mode", 4)) == 4:
                n_tris += (int(accessors[int(prim["indices"])]["count"]) if "indices" in prim else nv) // 3
    if n_verts > limits.max_vertices:
        raise MeshFileError(f"{name} stores {n_verts:,} vertices, above the limit of {limits.max_vertices:,}.")
    if n_tris > limits.max_faces:
        raise MeshFileError(f"{name} stores {n_tris:,} triangles, above the limit of {limits.max_faces:,}.")


def _check_images(doc: dict, path: Path, buffers: list, root: Path, limits: Limits) -> list[str]:
    """Replace images that may not be read by a placeholder and unlink them from materials; returns warnings."""
    warnings: list[str] = []
    views = doc.get("bufferViews", [])
    dropped: set[int] = set()
    for i, img in enumerate(doc.get("images", [])):
        label = img.get("name") or img.get("uri", "")[:60] or f"image {i}"
        blob: bytes | Path | None = None
        if "bufferView" in img:
            view = views[int(img["bufferView"])]
            src = buffers[int(view["buffer"])]
            raw = src if isinstance(src, bytes) else src.read_bytes()
            off = int(view.get("byteOffset", 0))
            blob = raw[off : off + int(view["byteLength"])]
        elif "uri" in img:
            uri = img["uri"]
            if uri.startswith("data:"):
                blob = _data_uri_bytes(uri)
            else:
                blob, note = resolve_reference(uri, path.parent, root)
                if blob is None:
                    warnings.append(f"Image {label}: {note}; it was skipped.")
        if blob is not None:
            size = image_size(blob)
            if size is None:
                warnings.append(f"Image {label} could not be read as an image; it was skipped.")
                blob = None
            elif size[0] * size[1] > limits.max_texture_pixels:
                warnings.append(
                    f"Image {label} is {size[0]}x{size[1]} pixels, above the {limits.max_texture_pixels / 1e6:g} MP "
                    "limit; it was not decoded and the mesh is shown without it."
                )
                blob = None
        if blob is None:
            dropped.add(i)
            doc["images"][i] = {"uri": _PLACEHOLDER_PNG, "mimeType": "image/png"}
    if dropped:
        bad_textures = {t for t, tex in enumerate(doc.get("textures", [])) if tex.get("source") in dropped}
        for mat in doc.get("materials", []):
            _unlink_textures(mat, bad_textures)
    return warnings


def _unlink_textures(node: Any, bad: set[int]) -> None:
    """Remove every {'index': t} texture reference to a dropped texture from a material, recursively."""
    if isinstance(node, dict):
        for key in [k for k, v in node.items() if isinstance(v, dict) and v.get("index") in bad and "Texture" in k]:
            del node[key]
        for value in node.values():
            _unlink_textures(value, bad)
    elif isinstance(node, list):
        for value in node:
            _unlink_textures(value, bad)


def _gltf_display_json(doc: dict) -> str:
    def shorten(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: shorten(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shorten(v) for v in node[:200]] + (["..."] if len(node) > 200 else [])
        if isinstance(node, str) and node.startswith("data:") and len(node) > 80:
            return node[:40] + f"... ({len(node):,} characters)"
        return node

    return cap_text(json.dumps(shorten(doc), indent=2))


def _pack_glb(doc: dict, binary: bytes | None) -> bytes:
    payload = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    payload += b" " * (-len(payload) % 4)
    out = [np.array([len(payload), _CHUNK_JSON], dtype="<u4").tobytes(), payload]
    if binary is not None:
        binary += b"\x00" * (-len(binary) % 4)
        out += [np.array([len(binary), _CHUNK_BIN], dtype="<u4").tobytes(), binary]
    body = b"".join(out)
    return np.array([_GLB_MAGIC, 2, 12 + len(body)], dtype="<u4").tobytes() + body


def read_gltf(path: Path, limits: Limits, root: Path) -> LoadedAsset:
    """Read a GLB or glTF scene with its buffers and images validated first (see loader.load_asset)."""
    import trimesh

    fmt = path.suffix.lower().lstrip(".")
    doc, binary = read_gltf_json(path)
    header = _gltf_display_json(doc)
    try:
        _, warnings = _gltf_check(doc, path, binary, root, limits)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise MeshFileError(f"{path.name} has a malformed glTF structure ({short_reason(e, False)}).") from e
    payload = _pack_glb(doc, binary) if fmt == "glb" else json.dumps(doc).encode("utf-8")
    scene = trimesh.load(
        io.BytesIO(payload),
        file_type=fmt,
        resolver=trimesh_resolver(path.parent, root),
        process=False,
        force="scene",
    )
    placed = scene.dump()  # geometry copies with node transforms applied, one per node that uses a mesh
    meshes = [g for g in placed if isinstance(g, trimesh.Trimesh)]
    clouds = [g for g in placed if isinstance(g, trimesh.PointCloud)]
    skipped = len(placed) - len(meshes) - len(clouds)
    if skipped:
        warnings.append(f"{skipped} line or path primitives were skipped.")
    parts = meshes or clouds
    if not parts:
        raise MeshFileError(f"{path.name} contains no triangle meshes or points.")
    verts_all, faces, colors, uvs, texture, tex_name = _merge_parts(parts)
    if texture is not None and sum(_material_image(getattr(p.visual, "material", None)) is not None for p in parts) > 1:
        warnings.append("Several mesh parts have textures; only the first is shown.")
    stored = sum(int(e["count"]) for e in _gltf_elements(doc))
    if stored and stored != len(verts_all):
        warnings.append(
            f"The scene places {len(verts_all):,} vertices, while its meshes store {stored:,} "
            "(meshes are instanced by several nodes, or some are unused)."
        )
    materials = _gltf_materials(doc)
    if texture is not None:
        texture, warn = _decode_checked(texture, tex_name, limits)
        if warn:
            warnings.append(warn)
    return LoadedAsset(
        path=path,
        format=fmt,
        encoding="binary" if fmt == "glb" else "json",
        header=header,
        verts=verts_all,
        faces=np.concatenate(faces) if faces else np.zeros((0, 3), np.int64),
        colors=np.concatenate(colors) if colors else None,
        uvs=np.concatenate(uvs) if texture is not None else None,
        texture=texture,
        elements=_gltf_elements(doc),
        materials=materials,
        warnings=warnings,
        texture_name=tex_name,
        loader=f"trimesh {trimesh.__version__} (glTF scene with node transforms applied)",
    )


def _merge_parts(parts: list) -> tuple:
    """(verts, faces, colours, uvs, texture, texture name) of the placed parts concatenated, faces offset to match."""
    import trimesh

    verts, faces, colors, uvs = [], [], [], []
    texture = tex_name = None
    base_colors = {tuple(_part_color(p, 1)[0]) for p in parts}
    has_colors = any(getattr(p.visual, "kind", None) == "vertex" for p in parts) or len(base_colors) > 1
    offset = 0
    for k, part in enumerate(parts):
        v = np.asarray(part.vertices, dtype=np.float32)
        verts.append(v)
        if isinstance(part, trimesh.Trimesh):
            faces.append(np.asarray(part.faces, dtype=np.int64) + offset)
        offset += len(v)
        visual = getattr(part, "visual", None)
        kind = getattr(visual, "kind", None)
        if has_colors:
            rgba = np.asarray(visual.vertex_colors if kind == "vertex" else _part_color(part, len(v)), dtype=np.float32)
            colors.append(rgba[:, :4] / 255.0)
        uv = getattr(visual, "uv", None) if kind == "texture" else None
        img = _material_image(getattr(visual, "material", None)) if uv is not None else None
        if texture is None and img is not None:
            texture, tex_name = img, f"image of mesh part {k}"
        uvs.append(
            np.asarray(uv, dtype=np.float32)
            if uv is not None and img is not None
            else np.zeros((len(v), 2), np.float32)
        )
    return np.concatenate(verts), faces, colors, uvs, texture, tex_name


def _part_color(part: Any, n: int) -> np.ndarray:
    """A mesh part's uniform colour (material base colour, else light grey) as (n, 4) uint8."""
    rgba = np.array([200, 200, 200, 255], dtype=np.uint8)
    material = getattr(getattr(part, "visual", None), "material", None)
    base = getattr(material, "baseColorFactor", None) if material is not None else None
    if base is None and material is not None:
        base = getattr(material, "diffuse", None)
    if base is not None:
        raw = np.asarray(base).reshape(-1)[:4]
        scale = 255.0 if np.issubdtype(raw.dtype, np.floating) and raw.size and raw.max() <= 1.0 else 1.0
        rgba[: raw.size] = np.clip(raw.astype(np.float64) * scale, 0, 255).round().astype(np.uint8)
    return np.tile(rgba, (n, 1))


def _material_image(material: Any) -> Any:
    if material is None:
        return None
    for attr in ("baseColorTexture", "image"):
        img = getattr(material, attr, None)
        if img is not None:
            return img
    return None


def _decode_checked(img: Any, label: str, limits: Limits) -> tuple[PIL.Image.Image | None, str | None]:
    """Decode a lazily opened PIL image from trimesh (its header size was checked before trimesh ran)."""
    try:
        w, h = img.size
        if w * h > limits.max_texture_pixels:
            return None, f"Texture {label} is {w}x{h} pixels, above the limit; the mesh is shown without it."
        alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        return img.convert("RGBA" if alpha else "RGB"), None
    except Exception as e:
        return None, f"Texture {label} could not be decoded ({short_reason(e, False)}); the mesh is shown without it."


def _gltf_elements(doc: dict) -> list[dict]:
    accessors = doc.get("accessors", [])
    out = []
    for m, mesh in enumerate(doc.get("meshes", [])):
        for p, prim in enumerate(mesh.get("primitives", [])):
            attrs = prim.get("attributes", {})
            if "POSITION" not in attrs:
                continue
            props = []
            for key, idx in attrs.items():
                acc = accessors[int(idx)]
                ctype = {5120: "int8", 5121: "uint8", 5122: "int16", 5123: "uint16", 5125: "uint32", 5126: "float32"}
                props.append([key, f"{acc.get('type')} {ctype.get(acc.get('componentType'), '?')}"])
            entry = {
                "name": f"{mesh.get('name') or f'mesh{m}'}/primitive{p}",
                "count": int(accessors[int(attrs["POSITION"])]["count"]),
                "properties": props,
                "mode": {0: "points", 1: "lines", 4: "triangles", 5: "triangle strip", 6: "triangle fan"}.get(
                    int(prim.get("mode", 4)), "other"
                ),
            }
            if "indices" in prim:
                entry["indices"] = int(accessors[int(prim["indices"])]["count"])
            out.append(entry)
    return out


def _gltf_materials(doc: dict) -> list[dict]:
    out = []
    images = doc.get("images", [])
    textures = doc.get("textures", [])
    for i, mat in enumerate(doc.get("materials", [])):
        pbr = mat.get("pbrMetallicRoughness", {})
        base = [float(x) for x in pbr.get("baseColorFactor", [1, 1, 1, 1])]
        entry: dict[str, Any] = {
            "name": mat.get("name") or f"material{i}",
            "Kd": base[:3],
            "d": base[3] if len(base) > 3 else 1.0,
            "metallic": float(pbr.get("metallicFactor", 1.0)),
            "roughness": float(pbr.get("roughnessFactor", 1.0)),
        }
        tex = pbr.get("baseColorTexture")
        if tex is not None and int(tex.get("index", -1)) < len(textures):
            src = textures[int(tex["index"])].get("source")
            if src is not None and int(src) < len(images):
                img = images[int(src)]
                entry["map_Kd"] = img.get("name") or img.get("uri", f"image {src}")[:80]
        out.append(entry)
    return out
