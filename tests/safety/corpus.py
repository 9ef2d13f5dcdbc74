"""Hostile files, made on the fly: pickles that carry code (they would write a canary file if ever run), truncated
and compressed-bomb checkpoints, `.npz` with object arrays, zips that climb out of their folder, meshes that refer to
files outside the upload, images with lying headers, and JSON that is deeply nested, huge or of the wrong types."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
BOMB_MB = 3072
"""What the zip bombs would unpack to."""


class Payload:
    """Unpickling this runs `exec(code)`: it writes the canary file."""

    def __init__(self, canary: Path) -> None:
        self.code = f"open({str(canary)!r}, 'w').write('pwned')"

    def __reduce__(self):
        return (builtins.exec, (self.code,))


def code_pickle(path: Path, canary: Path) -> Path:
    path.write_bytes(pickle.dumps({"weights": Payload(canary)}, protocol=2))
    return path


def code_pt(path: Path, canary: Path) -> Path:
    torch.save({"state_dict": Payload(canary)}, path)  # the zip format of torch.save, with code in data.pkl
    return path


def truncated_pt(path: Path) -> Path:
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, buf)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def wrong_keys_pt(path: Path) -> Path:
    torch.save({"format": "something-else", "tensor": torch.zeros(3), "nested": {"a": [1, 2, 3]}}, path)
    return path


def zip_with_bomb(path: Path, members: dict[str, bytes], bomb: str, bomb_mb: int = BOMB_MB, head: bytes = b"") -> Path:
    """A zip of `members` (stored) plus a member `bomb`: `head` then `bomb_mb` MB of zeros, deflated to about 1 MB
    per GB. Written by hand from one deflated 1 MB block repeated (after a full flush a deflate stream restarts, so
    the block is the same each time): the file takes milliseconds to make. Its CRC is left 0: a reader that checks
    it has unpacked everything by then."""
    squash = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = squash.compress(head) + squash.flush(zlib.Z_FULL_FLUSH)
    block = squash.compress(bytes(2**20)) + squash.flush(zlib.Z_FULL_FLUSH)
    again = squash.compress(bytes(2**20)) + squash.flush(zlib.Z_FULL_FLUSH)
    assert again == block
    packed = first + block * bomb_mb + squash.flush()
    entries = [(n, 0, d, len(d), zlib.crc32(d)) for n, d in members.items()]
    entries.append((bomb, 8, packed, len(head) + bomb_mb * 2**20, 0))
    local, central = bytearray(), bytearray()
    for name, method, data, size, crc in entries:
        raw = name.encode()
        offset = len(local)
        local += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 33, crc, len(data), size, len(raw), 0)
        local += raw + data
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 33, crc, len(data), size, len(raw), 0, 0, 0, 0, 0,
            offset,
        ) + raw  # fmt: skip
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    path.write_bytes(bytes(local + central) + end)
    return path


def bomb_pt(path: Path) -> Path:
    """A torch checkpoint whose tensor storage is deflated: a few MB on disk, `BOMB_MB` when loaded."""
    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(4)}}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src:
        members = {i.filename: src.read(i.filename) for i in src.infolist() if not i.filename.endswith("/data/0")}
        storage = next(i.filename for i in src.infolist() if i.filename.endswith("/data/0"))
    return zip_with_bomb(path, members, storage)


def bomb_npz(path: Path) -> Path:
    """An `.npz` whose `v_template` unpacks to `BOMB_MB`."""
    header = b"\x93NUMPY\x01\x00"
    meta = repr({"descr": "<f4", "fortran_order": False, "shape": (BOMB_MB * 2**20 // 12, 3)}).encode()
    meta += b" " * (63 - (len(header) + 2 + len(meta)) % 64) + b"\n"
    return zip_with_bomb(path, {}, "v_template.npy", head=header + struct.pack("<H", len(meta)) + meta)


def object_npz(path: Path, canary: Path) -> Path:
    """An `.npz` whose arrays are pickled Python objects (one carries code)."""
    with open(path, "wb") as out:
        np.savez(
            out, v_template=np.array([Payload(canary), 1], dtype=object), weights=np.array([{"a": 1}], dtype=object)
        )
    return path


def wrong_npz(path: Path) -> Path:
    np.savez(path, v_template=np.zeros((5, 2)), f=np.array([[0, 1, 99]]), weights=np.full((5, 24), np.nan))
    return path


def truncated_npz(path: Path) -> Path:
    buf = io.BytesIO()
    np.savez(buf, v_template=np.zeros((100, 3)))
    path.write_bytes(buf.getvalue()[:300])
    return path


def pickle_as(path: Path, canary: Path) -> Path:
    """A pickle that carries code, under whatever name (a `.ply`, an `.npz`, a `.json`)."""
    return code_pickle(path, canary)


def truncated_ply(path: Path) -> Path:
    data = (ROOT / "assets" / "torus_binary.ply").read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def climbing_zip(path: Path) -> Path:
    """A zip whose members climb out of the upload folder and whose OBJ names an MTL and texture outside it."""
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("../../escaped.txt", "written outside")
        out.writestr("/tmp/absolute-escape.txt", "written outside")
        out.writestr("mesh.obj", "mtllib ../../../../etc/passwd\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    return path


def bomb_zip(path: Path) -> Path:
    return zip_with_bomb(path, {"mesh.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"}, "padding.ply")


def outside_gltf(path: Path, secret: Path) -> Path:
    """A glTF whose buffer is a file outside the upload (the data dir's secret, say)."""
    doc = {
        "asset": {"version": "2.0"},
        "buffers": [{"uri": str(secret), "byteLength": 64}],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "max": [1, 1, 1], "min": [0, 0, 0]}
        ],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
    }
    path.write_text(json.dumps(doc))
    return path


def png_header(path: Path, width: int, height: int, *, truncated: bool = False) -> Path:
    """A PNG whose header declares `width`×`height` (20k×20k: a decompression bomb) with one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.write_bytes(body if truncated else body + chunk(b"IEND", b""))
    return path


def truncated_jpeg(path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[:200])
    return path


def nested_json(path: Path, depth: int = 200_000) -> Path:
    path.write_text("[" * depth + "]" * depth)
    return path


def huge_json(path: Path, megabytes: int = 8) -> Path:
    path.write_text('{"people": [{"pose_keypoints_2d": [' + "0.5, " * (megabytes * 2**20 // 5) + "0.5]}]}")
    return path


def wrong_type_json(path: Path) -> Path:
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": ["x", None, {"a": 1}] * 25}]}))
    return path


def wrong_shape_json(path: Path) -> Path:
    path.write_text(json.dumps({"people": "everyone", "pose_keypoints_2d": 7}))
    return path


def non_finite_json(path: Path) -> Path:
    path.write_text('{"pose_keypoints_2d": [' + ", ".join(["1e999", "NaN", "1"] * 25) + "]}")
    return path


def standing_person_json(path: Path) -> Path:
    """A valid OpenPose BODY_25 file: a person standing in a 256x512 picture (for the picture tests)."""
    points = {
        0: (128, 60), 1: (128, 110), 2: (98, 112), 3: (90, 170), 4: (86, 225), 5: (158, 112), 6: (166, 170),
        7: (170, 225), 8: (128, 250), 9: (108, 250), 10: (106, 350), 11: (104, 450), 12: (148, 250),
        13: (150, 350), 14: (152, 450), 19: (160, 470), 22: (96, 470),
    }  # fmt: skip
    flat = []
    for k in range(25):
        x, y = points.get(k, (0, 0))
        flat += [x, y, 1.0 if k in points else 0.0]
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": flat}]}))
    return path


Maker = Callable[[Path, Path, Path], Path]
"""(folder, canary, secret) -> a hostile file in `folder`."""
