"""Inspect a 3D file: load it safely, cross-check it, measure it, and convert it for viewers and downloads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.events import Done, Event, Progress
from pipelines.core.headline import Headline
from pipelines.core.paths import ASSETS_DIR
from pipelines.files.convert import sample_points
from pipelines.files.cross_check import cross_check
from pipelines.files.export import export_glb, export_obj_zip, export_ply, export_points_ply
from pipelines.files.loader import load_asset
from pipelines.files.stats import geometry_stats
from pipelines.files.types import Limits, LoadedAsset, MeshFileError
from pipelines.files.upload import stage_upload

HEADLINE = (Headline("time_load_s", "Loaded in", "s"),)
"""The result card's number: how long reading the file took."""

EXPORTS = ("glb", "ply-binary", "ply-ascii", "obj-zip")

DEFAULT_FILES = (
    str(ASSETS_DIR / "textured_cube.obj"),
    str(ASSETS_DIR / "textured_cube.mtl"),
    str(ASSETS_DIR / "textured_cube.png"),
)


@dataclass(frozen=True)
class Config:
    files: tuple[str, ...] = DEFAULT_FILES
    """Uploaded files: one 3D file, an OBJ with its MTL and textures, or a zip of them. Default: the bundled textured cube."""
    sample_points: int = 10_000
    """Surface points to sample (with normals) and export as a PLY point cloud; 0 skips it."""
    exports: tuple[str, ...] = ("glb",)
    """Conversions to write: any of glb (the viewer's file), ply-binary, ply-ascii, obj-zip."""
    cross_check: bool = True
    """Re-read the file with an independent reader (trimesh) and compare counts."""
    plot_max_faces: int = 60_000
    """Faces shown in the Plotly view; bigger meshes are decimated for display only."""
    max_upload_mb: float = 200.0
    """Largest upload accepted, per file and in all."""
    max_vertices: int = 5_000_000
    """Largest vertex count accepted (checked from the header, before allocating)."""
    max_faces: int = 10_000_000
    """Largest face count accepted (checked from the header, before allocating)."""
    device: str = "auto"
    """Unused by the loaders (they run on the CPU); recorded for the run store."""
    seed: int = 0
    """Seed of the surface-point sampler."""
    out_dir: Path | None = None
    """Where converted files go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def tiny(cls) -> Config:
        return cls(sample_points=500, exports=("glb", "ply-binary"))

    @classmethod
    def full(cls) -> Config:
        return cls(exports=EXPORTS)


def run(cfg: Config) -> Iterator[Event]:
    """Stage the upload, load, measure, cross-check and export; `Done.info` carries the summary."""
    unknown = sorted(set(cfg.exports) - set(EXPORTS))
    if unknown:
        raise ValueError(f"Unknown export {unknown[0]!r}: choose from {', '.join(EXPORTS)}.")
    if not cfg.files:
        raise MeshFileError("No file was given: upload a 3D file (PLY, OBJ, GLB, glTF, STL, OFF) or a zip.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    limits = Limits(max_upload_mb=cfg.max_upload_mb, max_vertices=cfg.max_vertices, max_faces=cfg.max_faces)
    total = 4 + len(cfg.exports) + (cfg.sample_points > 0)
    timings: dict[str, float] = {}
    step = 0

    def tick(name: str, t0: float, message: str) -> Progress:
        nonlocal step
        timings[f"time_{name}_s"] = time.perf_counter() - t0
        step += 1
        return Progress(step, total, {}, message)

    t0 = time.perf_counter()
    main = stage_upload(cfg.files, out_dir / "upload", limits)
    yield tick("stage", t0, f"staged {main.name}")

    t0 = time.perf_counter()
    asset = load_asset(main, limits)
    yield tick("load", t0, f"loaded {len(asset.verts)} vertices, {len(asset.faces)} faces")

    t0 = time.perf_counter()
    stats = geometry_stats(asset)
    yield tick("stats", t0, "geometry statistics")

    t0 = time.perf_counter()
    check = cross_check(asset) if cfg.cross_check else {"reader": "skipped", "agree": None, "notes": []}
    yield tick("cross_check", t0, f"cross-check with {check.get('reader')}")

    files: dict[str, Path] = {}
    writers = {
        "glb": lambda: export_glb(asset, out_dir / f"{main.stem}.glb"),
        "ply-binary": lambda: export_ply(asset, out_dir / f"{main.stem}_binary.ply", binary=True),
        "ply-ascii": lambda: export_ply(asset, out_dir / f"{main.stem}_ascii.ply", binary=False),
        "obj-zip": lambda: export_obj_zip(asset, out_dir / f"{main.stem}_obj.zip"),
    }
    for name in cfg.exports:
        if name == "obj-zip" and len(asset.faces) == 0:
            asset.warnings.append("OBJ export skipped: the file has no faces (a point cloud).")
            step += 1
            continue
        t0 = time.perf_counter()
        files[name] = writers[name]()
        yield tick(f"export_{name.replace('-', '_')}", t0, f"wrote {files[name].name}")

    if cfg.sample_points > 0:
        t0 = time.perf_counter()
        if len(asset.faces) == 0:
            asset.warnings.append("Point sampling skipped: the file has no faces (it is already a point cloud).")
        else:
            pts, nrm = sample_points(asset, cfg.sample_points, seed=cfg.seed)
            files["points"] = export_points_ply(pts, nrm, None, out_dir / f"{main.stem}_points.ply")
        yield tick("sample", t0, f"sampled {cfg.sample_points} surface points")

    if check.get("agree") is False:
        asset.warnings.append(
            f"Cross-check disagrees: {check.get('reader')} reads {check.get('num_vertices')} vertices and "
            f"{check.get('num_faces')} faces. " + " ".join(check.get("notes", []))
        )
    summary = summarize(asset, stats)
    metrics = {k: float(v) for k, v in timings.items()}
    metrics.update(num_vertices=float(len(asset.verts)), num_faces=float(len(asset.faces)))
    yield Done(
        metrics=metrics,
        files=files,
        info={"summary": summary, "stats": stats, "cross_check": check, "header": asset.header, "asset": asset},
    )


def summarize(asset: LoadedAsset, stats: dict) -> dict:
    """The summary JSON of the `/inspect` API: format and counts first, then everything else."""
    return {
        "file": asset.path.name,
        "format": asset.format,
        "encoding": asset.encoding,
        "num_vertices": int(len(asset.verts)),
        "num_faces": int(len(asset.faces)),
        "has_normals": asset.normals is not None,
        "has_colors": asset.colors is not None,
        "has_texture": asset.texture is not None,
        "bbox_min": stats.get("bbox_min"),
        "bbox_max": stats.get("bbox_max"),
        "watertight": stats.get("watertight"),
        "elements": asset.elements,
        "materials": asset.materials,
        "texture_size": None if asset.texture is None else list(asset.texture.size),
        "warnings": list(asset.warnings),
    }
