"""Hostile and broken inputs: each gives one clear MeshFileError (or a warning), fast, and a good file loads after."""

from __future__ import annotations

import json
import os
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from assets import make_assets
from pipelines.files import gltf, types
from pipelines.files.loader import load_asset
from pipelines.files.types import MB, SUPPORTED_EXTS, Limits, MeshFileError
from pipelines.files.upload import stage_upload

# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------

_OPENED: list[str] = []
_WATCHING = [False]


def _audit(event: str, args: tuple) -> None:
    if _WATCHING[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # records every file opened while _WATCHING[0] is set (builtins.open, io, numpy, PIL)


class watch_opens:
    """Context manager: the list of paths opened inside it."""

    def __enter__(self) -> list[str]:
        _OPENED.clear()
        _WATCHING[0] = True
        return _OPENED

    def __exit__(self, *exc) -> None:
        _WATCHING[0] = False


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A small valid mesh, loaded after every failure to show the loader is still fine."""
    return make_assets.make_mesh_file(tmp_path_factory.mktemp("good") / "good.ply", 200, "ply")


def rejected(path: Path, good: Path, match: str, limits: Limits = Limits(), seconds: float = 5.0) -> MeshFileError:
    """Assert load_asset(path) raises a one-sentence MeshFileError matching `match`, quickly; then load `good`."""
    t0 = time.perf_counter()
    with pytest.raises(MeshFileError, match=match) as info:
        load_asset(path, limits)
    elapsed = time.perf_counter() - t0
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message and message.endswith((".", "!", "?")), message
    assert elapsed < seconds, f"took {elapsed:.2f} s to reject {path.name}"
    assert load_asset(good).num_faces == 200
    return info.value


def ply_header(encoding: str, nv: int, nf: int, list_type: str = "uchar int") -> bytes:
    return (
        f"ply\nformat {encoding} 1.0\nelement vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {nf}\nproperty list {list_type} vertex_indices\nend_header\n"
    ).encode("ascii")


def tiny_png(width: int = 1, height: int = 1) -> bytes:
    """A valid 1x1 PNG whose IHDR then claims width x height (a decompression bomb costs nothing to make)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


# ----------------------------------------------------------------------------------------------------------------
# PLY
# ----------------------------------------------------------------------------------------------------------------


def test_truncated_binary_ply(tmp_path: Path, good: Path) -> None:
    data = (make_assets.ASSETS_DIR / "torus_binary.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[: len(data) // 2])
    rejected(tmp_path / "cut.ply", good, "truncated")
    (tmp_path / "head.ply").write_bytes(data[:200])
    rejected(tmp_path / "head.ply", good, "header")


def test_header_lies_about_counts(tmp_path: Path, good: Path, reader: str) -> None:
    verts = np.zeros((3, 3), "<f4").tobytes()
    face = struct.pack("<B3i", 3, 0, 1, 2)
    (tmp_path / "more.ply").write_bytes(ply_header("binary_little_endian", 30, 1) + verts + face)
    rejected(tmp_path / "more.ply", good, "truncated|overstates")
    (tmp_path / "fewer.ply").write_bytes(ply_header("binary_little_endian", 2, 1) + verts + face)
    rejected(tmp_path / "fewer.ply", good, "after the data|understates|face index")
    ascii_body = b"0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    (tmp_path / "more_ascii.ply").write_bytes(ply_header("ascii", 5, 1) + ascii_body)
    rejected(tmp_path / "more_ascii.ply", good, "overstates|truncated")
    (tmp_path / "fewer_ascii.ply").write_bytes(ply_header("ascii", 3, 0) + ascii_body)
    rejected(tmp_path / "fewer_ascii.ply", good, "more data lines")
    (tmp_path / "list.ply").write_bytes(ply_header("ascii", 3, 1) + b"0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n")
    rejected(tmp_path / "list.ply", good, "list length")


@pytest.mark.parametrize("encoding", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_absurd_declared_counts_fail_fast(tmp_path: Path, good: Path, encoding: str) -> None:
    body = b"\x00" * 1000
    (tmp_path / "huge.ply").write_bytes(ply_header(encoding, 10**9, 10**9) + body)
    rejected(tmp_path / "huge.ply", good, "above the limit", seconds=1.0)
    big_limits = Limits(max_vertices=10**12, max_faces=10**12)
    rejected(tmp_path / "huge.ply", good, "holds only", limits=big_limits, seconds=1.0)


def test_face_list_of_two_billion_fails_fast(tmp_path: Path, good: Path) -> None:
    verts = np.zeros((3, 3), "<f4").tobytes()
    face = struct.pack("<i", 2**31 - 1) + struct.pack("<3i", 0, 1, 2)
    (tmp_path / "longlist.ply").write_bytes(ply_header("binary_little_endian", 3, 1, "int int") + verts + face)
    rejected(tmp_path / "longlist.ply", good, "truncated", seconds=1.0)
    many = struct.pack("<B3i", 3, 0, 1, 2) * 1000 + struct.pack("<B", 255) + struct.pack("<3i", 0, 1, 2)
    (tmp_path / "ragged.ply").write_bytes(ply_header("binary_little_endian", 3, 1001) + verts + many)
    rejected(tmp_path / "ragged.ply", good, "truncated", seconds=1.0)
    text = ply_header("ascii", 3, 1) + b"0 0 0\n1 0 0\n0 1 0\n2147483647 0 1 2\n"
    (tmp_path / "longlist_ascii.ply").write_bytes(text)
    rejected(tmp_path / "longlist_ascii.ply", good, "list length", seconds=1.0)


def test_ply_malformed_headers(tmp_path: Path, good: Path) -> None:
    cases = {
        "nomagic.ply": b"plx\nformat ascii 1.0\nend_header\n",
        "noend.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n",
        "badtype.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n0\n",
        "badformat.ply": b"ply\nformat binary_middle_endian 1.0\nelement vertex 1\nproperty float x\nend_header\n",
        "negative.ply": b"ply\nformat ascii 1.0\nelement vertex -5\nproperty float x\nend_header\n",
        "novertex.ply": b"ply\nformat ascii 1.0\nelement point 1\nproperty float x\nend_header\n0\n",
        "noxyz.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float a\nend_header\n0\n",
        "junk.ply": b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nrm -rf /\nend_header\n0\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        rejected(tmp_path / name, good, ".")


@pytest.fixture(params=["pytorch3d", "vectorised"])
def reader(request, monkeypatch) -> str:
    """Run a test through PyTorch3D's readers and again through the vectorised ones (used above the size switch)."""
    if request.param == "vectorised":
        monkeypatch.setattr(types, "PYTORCH3D_MAX_FACES", 0)
    return request.param


def test_indices_out_of_range(tmp_path: Path, good: Path, reader: str) -> None:
    (tmp_path / "idx.ply").write_bytes(ply_header("ascii", 3, 1) + b"0 0 0\n1 0 0\n0 1 0\n3 0 1 99\n")
    rejected(tmp_path / "idx.ply", good, "out of range")
    verts = np.zeros((3, 3), "<f4").tobytes()
    (tmp_path / "neg.ply").write_bytes(
        ply_header("binary_little_endian", 3, 1) + verts + struct.pack("<B3i", 3, 0, -7, 2)
    )
    rejected(tmp_path / "neg.ply", good, "out of range")
    (tmp_path / "idx.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 99\n")
    rejected(tmp_path / "idx.obj", good, "invalid indices|out of range")
    (tmp_path / "zero.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n")
    rejected(tmp_path / "zero.obj", good, "index 0")
    (tmp_path / "negobj.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -1 -2 -9\n")
    rejected(tmp_path / "negobj.obj", good, "invalid indices|out of range")
    (tmp_path / "idx.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n")
    rejected(tmp_path / "idx.off", good, "invalid indices|out of range")


def test_nan_and_inf_coordinates(tmp_path: Path, good: Path, reader: str) -> None:
    (tmp_path / "nan.ply").write_bytes(ply_header("ascii", 3, 1) + b"0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n")
    err = rejected(tmp_path / "nan.ply", good, "NaN or infinite")
    assert "vertex 1" in str(err)
    verts = np.array([[0, 0, 0], [np.inf, 0, 0], [0, 1, 0]], "<f4").tobytes()
    (tmp_path / "inf.ply").write_bytes(
        ply_header("binary_little_endian", 3, 1) + verts + struct.pack("<B3i", 3, 0, 1, 2)
    )
    rejected(tmp_path / "inf.ply", good, "NaN or infinite")
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 nan 0\nv 0 1 0\nf 1 2 3\n")
    rejected(tmp_path / "nan.obj", good, "NaN or infinite")
    (tmp_path / "inf.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n")
    rejected(tmp_path / "inf.off", good, "NaN or infinite")
    verts, faces = make_assets.icosphere(0)
    verts[3] = np.nan
    (tmp_path / "nan.stl").write_bytes(make_assets.stl_bytes(verts, faces))
    rejected(tmp_path / "nan.stl", good, "NaN or infinite")


def test_zero_faces_is_a_point_cloud_with_a_warning(tmp_path: Path, good: Path) -> None:
    (tmp_path / "pts.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    a = load_asset(tmp_path / "pts.obj")
    assert a.is_point_cloud and a.num_vertices == 3 and any("no faces" in w for w in a.warnings)
    (tmp_path / "pts.off").write_text("OFF\n2 0 0\n0 0 0\n1 1 1\n")
    assert load_asset(tmp_path / "pts.off").is_point_cloud
    (tmp_path / "empty_faces.ply").write_bytes(ply_header("ascii", 2, 0) + b"0 0 0\n1 1 1\n")
    assert load_asset(tmp_path / "empty_faces.ply").is_point_cloud


# ----------------------------------------------------------------------------------------------------------------
# Every format: empty files and random bytes
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", SUPPORTED_EXTS)
def test_empty_and_random_bytes(tmp_path: Path, good: Path, ext: str) -> None:
    (tmp_path / f"empty{ext}").write_bytes(b"")
    rejected(tmp_path / f"empty{ext}", good, "empty")
    rng = np.random.default_rng(abs(hash(ext)) % 1000)
    prefixes = [b"", b"ply\n", b"glTF", b"solid x\n", b"OFF\n", b"v 1 2 3\nf 1 2 3\n"]
    for k, prefix in enumerate(prefixes):
        path = tmp_path / f"random{k}{ext}"
        path.write_bytes(prefix + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        rejected(path, good, ".")
    (tmp_path / f"ws{ext}").write_bytes(b" \n\n \t\n")
    rejected(tmp_path / f"ws{ext}", good, ".")


def test_unsupported_extension(tmp_path: Path, good: Path) -> None:
    (tmp_path / "x.fbx").write_bytes(b"Kaydara FBX Binary")
    rejected(tmp_path / "x.fbx", good, "not a supported 3D file")


def test_stl_size_mismatch(tmp_path: Path, good: Path) -> None:
    (tmp_path / "lie.stl").write_bytes(b"\x00" * 80 + struct.pack("<I", 10**8) + b"\x00" * 50)
    rejected(tmp_path / "lie.stl", good, "declares 100,000,000 triangles", seconds=1.0)


# ----------------------------------------------------------------------------------------------------------------
# References outside the upload
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the upload holding 'secret' files a hostile OBJ/MTL/glTF points at."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "evil.mtl").write_text("newmtl stolen\nKd 1 0 0\nmap_Kd secret.png\n")
    (d / "secret.png").write_bytes(tiny_png())
    (d / "secret.bin").write_bytes(b"SENTINEL" * 64)
    return d


def test_mtl_and_texture_outside_the_upload_are_never_opened(tmp_path: Path, outside: Path, good: Path) -> None:
    up = tmp_path / "upload"
    up.mkdir()
    depth = "../" * len(up.parts)
    (up / "m.obj").write_text(
        f"mtllib ../outside/evil.mtl\nmtllib {depth}etc/passwd\nmtllib {outside / 'evil.mtl'}\nmtllib local.mtl\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nusemtl mine\nf 1/1 2/2 3/3\n"
    )
    (up / "local.mtl").write_text(f"newmtl mine\nKd 0 1 0\nmap_Kd {outside / 'secret.png'}\n")
    (up / "link.png").symlink_to(outside / "secret.png")
    (up / "linked.obj").write_text("mtllib linked.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nusemtl l\nf 1/1 2/1 3/1\n")
    (up / "linked.mtl").write_text("newmtl l\nmap_Kd link.png\n")
    with watch_opens() as opened:
        a = load_asset(up / "m.obj")
        b = load_asset(up / "linked.obj")
    assert not [p for p in opened if os.path.realpath(p).startswith(str(outside)) or "passwd" in p], opened
    assert [m["name"] for m in a.materials] == ["mine"] and a.materials[0]["Kd"] == [0, 1, 0]
    assert a.texture is None and b.texture is None and a.num_faces == b.num_faces == 1
    text = " ".join(a.warnings)
    assert text.count("outside the upload folder") >= 3 and "absolute path" in text
    assert any("outside the upload folder" in w for w in b.warnings)
    assert load_asset(good).num_faces == 200


def test_absolute_texture_name_matched_inside_the_upload(tmp_path: Path) -> None:
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nusemtl a\nf 1/1 2/1 3/1\n")
    (tmp_path / "m.mtl").write_text("newmtl a\nmap_Kd -s 1 1 1 C:\\Users\\me\\textures\\wood.png\n")
    make_assets.checker_texture(8, 2).save(tmp_path / "wood.png")
    a = load_asset(tmp_path / "m.obj")
    assert a.texture is not None and a.texture.size == (8, 8) and any("wood.png" in w for w in a.warnings)


def test_gltf_references_outside_the_upload(tmp_path: Path, outside: Path, good: Path) -> None:
    import base64

    import trimesh

    verts, faces = make_assets.icosphere(0)
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(trimesh.Trimesh(verts, faces, process=False)))
    doc = json.loads(files["model.gltf"])
    up = tmp_path / "upload"
    up.mkdir()
    for name, data in files.items():
        if name != "model.gltf":
            (up / name).write_bytes(data)
    bad_buffer = json.loads(json.dumps(doc))
    bad_buffer["buffers"][0]["uri"] = "../outside/secret.bin"
    (up / "buffer.gltf").write_text(json.dumps(bad_buffer))
    bad_image = json.loads(json.dumps(doc))
    bad_image["images"] = [{"uri": "../outside/secret.png"}, {"uri": str(outside / "secret.png")}]
    bad_image["textures"] = [{"source": 0}, {"source": 1}]
    bad_image["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    (up / "image.gltf").write_text(json.dumps(bad_image))
    bomb = json.loads(json.dumps(doc))
    bomb["images"] = [{"uri": "data:image/png;base64," + base64.b64encode(tiny_png(30000, 30000)).decode()}]
    bomb["textures"] = [{"source": 0}]
    (up / "bomb.gltf").write_text(json.dumps(bomb))
    with watch_opens() as opened:
        with pytest.raises(MeshFileError, match="outside the upload folder"):
            load_asset(up / "buffer.gltf")
        a = load_asset(up / "image.gltf")
        c = load_asset(up / "bomb.gltf")
    assert not [p for p in opened if os.path.realpath(p).startswith(str(outside))], opened
    assert a.num_faces == 20 and a.texture is None and sum("outside the upload" in w for w in a.warnings) == 2
    assert c.texture is None and any("30000x30000" in w for w in c.warnings)
    assert load_asset(good).num_faces == 200


# ----------------------------------------------------------------------------------------------------------------
# Decompression bombs and sizes
# ----------------------------------------------------------------------------------------------------------------


def test_decompression_bomb_texture_is_not_decoded(tmp_path: Path, good: Path, monkeypatch) -> None:
    from PIL import ImageFile

    (tmp_path / "bomb.png").write_bytes(tiny_png(30000, 30000))
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nusemtl a\nf 1/1 2/1 3/1\n")
    (tmp_path / "m.mtl").write_text("newmtl a\nKd 1 1 1\nmap_Kd bomb.png\n")
    decoded: list[int] = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or original(self))
    t0 = time.perf_counter()
    a = load_asset(tmp_path / "m.obj")
    assert time.perf_counter() - t0 < 2.0
    assert a.texture is None and a.materials[0]["texture_size"] == [30000, 30000] and not decoded
    assert any("30000x30000" in w and "not decoded" in w for w in a.warnings)
    small = load_asset(tmp_path / "m.obj", Limits(max_texture_pixels=10))
    assert small.texture is None
    assert load_asset(good).num_faces == 200


def test_bomb_texture_in_glb(tmp_path: Path, good: Path) -> None:
    import trimesh

    glb = bytearray((make_assets.ASSETS_DIR / "textured_sphere.glb").read_bytes())
    doc, binary = gltf.read_gltf_json(make_assets.ASSETS_DIR / "textured_sphere.glb")
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    png = tiny_png(40000, 40000)
    assert len(png) <= view["byteLength"]
    start = 12 + 8 + len(glb[20 : 20 + struct.unpack("<I", glb[12:16])[0]]) + 8 + view.get("byteOffset", 0)
    glb[start : start + len(png)] = png
    (tmp_path / "bomb.glb").write_bytes(bytes(glb))
    a = load_asset(tmp_path / "bomb.glb")
    assert a.texture is None and a.num_faces == 1280 and any("40000x40000" in w for w in a.warnings)
    assert trimesh is not None and load_asset(good).num_faces == 200


def test_oversized_files_and_uploads(tmp_path: Path, good: Path) -> None:
    big = make_assets.make_mesh_file(tmp_path / "big.ply", 20_000, "ply")
    tiny = Limits(max_upload_mb=0.05)
    rejected(big, good, "above the 0.05 MB limit", limits=tiny)
    with pytest.raises(MeshFileError, match="upload limit"):
        stage_upload([big], tmp_path / "up1", tiny)
    halves = [make_assets.make_mesh_file(tmp_path / f"h{k}.ply", 1200, "ply") for k in range(2)]
    with pytest.raises(MeshFileError, match="in total"):
        stage_upload(halves, tmp_path / "up2", Limits(max_upload_mb=1.2 * halves[0].stat().st_size / MB))
    rejected(big, good, "vertices, above the limit", limits=Limits(max_vertices=100))
    rejected(big, good, "faces, above the limit", limits=Limits(max_faces=100))


def test_stage_upload_rejections(tmp_path: Path) -> None:
    with pytest.raises(MeshFileError, match="No file"):
        stage_upload([], tmp_path / "a")
    (tmp_path / "only.png").write_bytes(tiny_png())
    with pytest.raises(MeshFileError, match="no 3D file"):
        stage_upload([tmp_path / "only.png"], tmp_path / "b")
    with pytest.raises(MeshFileError, match="could not be found"):
        stage_upload([tmp_path / "missing.obj"], tmp_path / "c")


# ----------------------------------------------------------------------------------------------------------------
# Zips
# ----------------------------------------------------------------------------------------------------------------

CUBE_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def make_zip(path: Path, members: dict[str, bytes | str], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "symlink", "match"),
    [
        ({"../evil.obj": CUBE_OBJ}, None, "outside the archive"),
        ({"ok/../../evil.obj": CUBE_OBJ}, None, "outside the archive"),
        ({"/tmp/evil.obj": CUBE_OBJ}, None, "absolute path"),
        ({"C:\\evil.obj": CUBE_OBJ}, None, "absolute path"),
        ({"m.obj": CUBE_OBJ}, "tex.png", "symbolic link"),
    ],
)
def test_zip_hostile_names(tmp_path: Path, members: dict, symlink: str | None, match: str) -> None:
    z = make_zip(tmp_path / "x.zip", members, symlink)
    with pytest.raises(MeshFileError, match=match):
        stage_upload([z], tmp_path / "up")
    assert not (tmp_path / "evil.obj").exists()
    ok = make_zip(tmp_path / "ok.zip", {"m.obj": CUBE_OBJ})
    assert load_asset(stage_upload([ok], tmp_path / "up_ok")).num_faces == 1


def test_zip_bomb_and_member_count(tmp_path: Path) -> None:
    limits = Limits(max_unzipped_mb=1.0, max_zip_members=10)
    bomb = make_zip(tmp_path / "bomb.zip", {"m.obj": CUBE_OBJ, "pad.bin": b"\x00" * (3 * MB)})
    assert bomb.stat().st_size < 50_000
    with pytest.raises(MeshFileError, match="unpack"):
        stage_upload([bomb], tmp_path / "up1", limits)
    many = make_zip(tmp_path / "many.zip", {f"f{k}.obj": CUBE_OBJ for k in range(11)})
    with pytest.raises(MeshFileError, match="members"):
        stage_upload([many], tmp_path / "up2", limits)
    ok = make_zip(tmp_path / "ok.zip", {"m.obj": CUBE_OBJ})
    assert load_asset(stage_upload([ok], tmp_path / "up3", limits)).num_faces == 1


def test_zip_that_lies_about_its_sizes(tmp_path: Path) -> None:
    """Declared sizes patched to 1 byte: the real decompressed bytes are counted (or the CRC check fails)."""
    z = make_zip(tmp_path / "liar.zip", {"m.obj": CUBE_OBJ, "pad.bin": b"\x00" * (3 * MB)})
    data = bytearray(z.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size in local / central headers
        pos = data.find(sig)
        while pos >= 0:
            data[pos + offset : pos + offset + 4] = struct.pack("<I", 1)
            pos = data.find(sig, pos + 4)
    z.write_bytes(bytes(data))
    with pytest.raises(MeshFileError):
        stage_upload([z], tmp_path / "up", Limits(max_unzipped_mb=1.0))


def test_damaged_zip(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(MeshFileError, match="not a valid zip"):
        stage_upload([tmp_path / "bad.zip"], tmp_path / "up")


# ----------------------------------------------------------------------------------------------------------------
# glTF structure
# ----------------------------------------------------------------------------------------------------------------


def _glb_with(doc: dict, binary: bytes) -> bytes:
    return gltf._pack_glb(doc, binary)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["accessors"][0].update(count=10**12), "accessor"),
        (lambda d: (d["accessors"][0].pop("bufferView"), d["accessors"][0].update(count=2 * 10**7)), "no data"),
        (lambda d: d["bufferViews"][0].update(byteLength=10**9), "outside its buffer"),
        (lambda d: d["accessors"][0].update(count=d["accessors"][0]["count"] + 10), "reads past"),
        (lambda d: d.update(extensionsRequired=["KHR_draco_mesh_compression"]), "compressed geometry"),
        (lambda d: d["asset"].update(version="1.0"), "only glTF 2.0"),
        (lambda d: d.update(accessors="nonsense"), "malformed|Could not read"),
    ],
)
def test_glb_structure_lies(tmp_path: Path, good: Path, edit: Callable[[dict], object], match: str) -> None:
    doc, binary = gltf.read_gltf_json(make_assets.ASSETS_DIR / "textured_sphere.glb")
    edit(doc)
    (tmp_path / "lie.glb").write_bytes(_glb_with(doc, binary))
    rejected(tmp_path / "lie.glb", good, match, seconds=2.0)


def test_glb_truncated_and_garbage_json(tmp_path: Path, good: Path) -> None:
    data = (make_assets.ASSETS_DIR / "textured_sphere.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(data[: len(data) // 2])
    rejected(tmp_path / "cut.glb", good, "truncated")
    (tmp_path / "garbage.glb").write_bytes(data[:20] + b"{not json" + data[29:])
    rejected(tmp_path / "garbage.glb", good, "JSON")
    (tmp_path / "garbage.gltf").write_text("{]")
    rejected(tmp_path / "garbage.gltf", good, "JSON")
