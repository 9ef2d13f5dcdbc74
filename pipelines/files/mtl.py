"""MTL reader: the materials of an OBJ's material libraries and their first texture, resolved inside the upload."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.files.types import MB, Limits, first_lines
from pipelines.files.upload import image_size, open_texture, resolve_reference

if TYPE_CHECKING:
    import PIL.Image

_MAP_OPTIONS = {"-blendu": 1, "-blendv": 1, "-cc": 1, "-clamp": 1, "-texres": 1, "-bm": 1, "-boost": 1,
                "-imfchan": 1, "-type": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3}  # fmt: skip


def _map_file_name(rest: str) -> str:
    """The file name of an MTL map statement, skipping options like '-s 1 1 1'."""
    tokens = rest.split()
    i = 0
    while i < len(tokens) and tokens[i].lower() in _MAP_OPTIONS:
        n = _MAP_OPTIONS[tokens[i].lower()]
        i += 1
        for _ in range(n):  # options with up to n numeric arguments
            if i < len(tokens) - 1 and re.fullmatch(r"[-+0-9.eE]+|on|off", tokens[i]):
                i += 1
    return " ".join(tokens[i:])


def parse_mtl(text: str) -> list[dict]:
    """Materials of an MTL file: name, Ka, Kd, Ks, Ns, d (1 - Tr when only Tr is given) and map names."""
    materials: list[dict] = []
    cur: dict | None = None
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        key = tokens[0]
        if key == "newmtl":
            cur = {"name": " ".join(tokens[1:]) or f"material{len(materials)}"}
            materials.append(cur)
            continue
        if cur is None:
            continue
        try:
            if key in ("Ka", "Kd", "Ks", "Ke") and len(tokens) >= 4:
                cur[key] = [float(x) for x in tokens[1:4]]
            elif key in ("Ns", "d", "Ni", "illum") and len(tokens) >= 2:
                cur[key] = float(tokens[1]) if key != "illum" else int(float(tokens[1]))
            elif key == "Tr" and len(tokens) >= 2 and "d" not in cur:
                cur["d"] = 1.0 - float(tokens[1])
            elif key.lower().startswith(("map_", "bump", "disp", "decal", "norm", "refl")) and len(tokens) >= 2:
                name = _map_file_name(line.strip()[len(key) :])
                if name:
                    cur["map_Kd" if key == "map_Kd" else key] = name
        except ValueError:
            continue
    return materials


def obj_materials(
    path: Path, mtllibs: list[str], usemtl: list[str], root: Path, limits: Limits, warnings: list[str]
) -> tuple[list[dict], PIL.Image.Image | None, str | None, str]:
    """Materials in usemtl order (then unused ones), the first safe texture, and MTL header lines."""
    defined: dict[str, dict] = {}
    bases: dict[str, Path] = {}  # material name -> folder of the MTL that defines it
    header = ""
    for entry in mtllibs[:8]:
        found, note = resolve_reference(entry, path.parent, root)
        if found is None and " " in entry.strip():
            for part in entry.split():  # 'mtllib a.mtl b.mtl'
                p2, n2 = resolve_reference(part, path.parent, root)
                if p2 is not None:
                    _read_mtl(p2, defined, bases, warnings)
                    header += f"\n\n# {p2.name} (first lines)\n" + first_lines(p2.read_bytes()[:65536])
                elif n2:
                    warnings.append(f"Material library {n2}; it was ignored.")
            continue
        if note:
            warnings.append(f"Material library {note}" + ("." if found else "; the mesh loads without its materials."))
        if found is not None:
            _read_mtl(found, defined, bases, warnings)
            header += f"\n\n# {found.name} (first lines)\n" + first_lines(found.read_bytes()[:65536])
    names = list(usemtl)
    for name in names:
        if name not in defined and defined:
            warnings.append(f"Material {name} is used but not defined in the MTL file.")
    names += [n for n in defined if n not in names]
    materials = [dict(defined.get(n, {"name": n})) for n in names]
    texture = tex_name = None
    textured: list[str] = []
    for mat in materials:
        ref = mat.get("map_Kd")
        if not ref:
            continue
        base = bases.get(mat["name"], path.parent)
        found, note = resolve_reference(ref, base, root)  # relative to the MTL's folder, as most tools do
        if found is None and base != path.parent:
            found2, _ = resolve_reference(ref, path.parent, root)  # ... or to the OBJ's, as PyTorch3D does
            found, note = (found2, None) if found2 is not None else (found, note)
        if note:
            warnings.append(f"Texture of material {mat['name']}: {note}" + ("." if found else "; it was skipped."))
        if found is None:
            continue
        if texture is None and found.name not in textured:
            img, size, warn = open_texture(found, found.name, limits)
            if warn:
                warnings.append(warn)
            if size:
                mat["texture_size"] = size
            if img is not None:
                texture, tex_name = img, found.name
        else:
            size = image_size(found)
            if size:
                mat["texture_size"] = list(size)
        textured.append(found.name)
    if len(set(textured)) > 1 and texture is not None:
        warnings.append(f"The materials use {len(set(textured))} textures; only the first ({tex_name}) is shown.")
    return materials, texture, tex_name, header


def _read_mtl(path: Path, out: dict[str, dict], bases: dict[str, Path], warnings: list[str]) -> None:
    """Add the materials of one MTL file not defined yet, and the folder each came from."""
    if path.stat().st_size > 16 * MB:
        warnings.append(f"Material library {path.name} is larger than 16 MB; it was ignored.")
        return
    for mat in parse_mtl(path.read_bytes().decode("utf-8", errors="replace")):
        if mat["name"] not in out:
            out[mat["name"]] = mat
            bases[mat["name"]] = path.parent
