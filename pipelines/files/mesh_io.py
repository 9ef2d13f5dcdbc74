"""Safe loading of user 3D files (PLY/OBJ+MTL/GLB/glTF/STL/OFF/zip) into plain arrays: the names callers use.

A thin re-export kept so existing callers work unchanged; the code lives in the package's single-purpose modules
(types, upload, loader, one reader per format, convert, export, stats, cross_check, plotly_view).
"""

from __future__ import annotations

from pipelines.files.convert import sample_points, to_pytorch3d, to_trimesh
from pipelines.files.cross_check import cross_check
from pipelines.files.export import export_glb, export_obj_zip, export_ply, export_points_ply
from pipelines.files.loader import load_asset
from pipelines.files.plotly_view import plotly_figure
from pipelines.files.stats import geometry_stats
from pipelines.files.types import SUPPORTED_EXTS, Limits, LoadedAsset, MeshFileError
from pipelines.files.upload import stage_upload

__all__ = [
    "SUPPORTED_EXTS",
    "Limits",
    "LoadedAsset",
    "MeshFileError",
    "cross_check",
    "export_glb",
    "export_obj_zip",
    "export_ply",
    "export_points_ply",
    "geometry_stats",
    "load_asset",
    "plotly_figure",
    "sample_points",
    "stage_upload",
    "to_pytorch3d",
    "to_trimesh",
]
