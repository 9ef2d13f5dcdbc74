"""The multi-view data builder of Volume and NeRF: views of a mesh from known cameras, a held-out split, and
Plotly pictures of the cameras and of the ray sampler.

Conventions are PyTorch3D's (+X left, +Y up, +Z into the screen). Images are float in [0, 1], channels last,
on a black background (as in the book); silhouettes are 0/1 masks of the same size.

This module builds the data (with a per-process cache of built-in objects, and the DDP broadcast); the types live
in `multiview_data`, the objects in `multiview_objects`, the rendering and rays in `multiview_render`, the
pictures in `multiview_figures` and the generator helpers in `generators`.
"""

from __future__ import annotations

import collections
import dataclasses
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch
from pytorch3d.renderer import FoVPerspectiveCameras
from pytorch3d.structures import Meshes

from pipelines.render.mesh_convert import texture_to_vertex_colors
from pipelines.train.generators import finish
from pipelines.train.multiview_data import (
    FOV_DEG,
    DataConfig,
    MultiviewData,
    check_data_config,
    view_plan,
)
from pipelines.train.multiview_objects import load_object
from pipelines.train.multiview_render import render_views_steps, view_cameras


def build(cfg: DataConfig, device: torch.device, stage_dir: Path | None = None) -> MultiviewData:
    """Load the object and render `cfg.n_views` views around it, with the held-out split."""
    return finish(build_steps(cfg, device, stage_dir))


_CACHE: collections.OrderedDict[tuple, MultiviewData] = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4
_CACHE_MAX_BYTES = 1 << 30  # pictures kept for the life of the process (400 views of 512 px alone are 1.6 GB)


def _cache_bytes() -> int:
    return sum(d.images.nbytes + d.silhouettes.nbytes for d in _CACHE.values())


def build_steps(cfg: DataConfig, device: torch.device, stage_dir: Path | None = None):
    """`build` as a generator that yields a message after every few views and returns the MultiviewData.

    Built-in objects are rendered once per process and settings (the CPU rasteriser is slow), then copied.
    """
    check_data_config(cfg)
    if cfg.files:
        with tempfile.TemporaryDirectory() as tmp:
            mesh = load_object(cfg, Path(stage_dir or tmp), device)
        return (yield from build_from_mesh_steps(mesh, cfg, device))
    key = (cfg.object, cfg.n_views, cfg.image_size, cfg.elevation, cfg.distance, cfg.azimuth_range, cfg.lighting)
    key += (cfg.heldout_views,) if cfg.holdout_every == 0 else (-1,)  # extra held-out views are extra pictures
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        cpu = torch.device("cpu")
        cached = yield from build_from_mesh_steps(load_object(cfg, Path("."), cpu), cfg, cpu)
        with _CACHE_LOCK:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE or (len(_CACHE) > 1 and _cache_bytes() > _CACHE_MAX_BYTES):
                _CACHE.popitem(last=False)
    return _copy_to(cached, cfg, device)


def _copy_to(data: MultiviewData, cfg: DataConfig, device: torch.device) -> MultiviewData:
    """A copy of cached data on `device`, with the split of `cfg` (holdout is not part of the cache key)."""
    _, train, test = view_plan(cfg)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    for name, value in fields.items():
        if isinstance(value, torch.Tensor):
            fields[name] = value.to(device, copy=True)
    fields["train_idx"] = torch.tensor(train, dtype=torch.long, device=device)
    fields["test_idx"] = torch.tensor(test, dtype=torch.long, device=device)
    return MultiviewData(**fields)


def _frame(cfg: DataConfig, device: torch.device) -> tuple[FoVPerspectiveCameras, dict[str, Any]]:
    """The cameras and the picture-free fields of the data set (cameras, azimuths, held-out split)."""
    azimuth, train, test = view_plan(cfg)  # (N,) train and held-out views
    cams = view_cameras(azimuth, cfg.elevation, cfg.distance, device)
    return cams, {
        "R": cams.R,
        "T": cams.T,
        "azimuth": azimuth.to(device),
        "elevation": float(cfg.elevation),
        "distance": float(cfg.distance),
        "fov": FOV_DEG,
        "train_idx": torch.tensor(train, dtype=torch.long, device=device),
        "test_idx": torch.tensor(test, dtype=torch.long, device=device),
    }


def build_from_mesh_steps(mesh: Meshes, cfg: DataConfig, device: torch.device):
    """Render the views of an already loaded (normalised) mesh: a generator of progress messages that returns
    the MultiviewData (the config was checked by the caller)."""
    cams, frame = _frame(cfg, device)
    per_chunk = max(1, int(4 * (64 / cfg.image_size) ** 2))  # about 16k pixels per rasteriser call
    images, silhouettes = yield from render_views_steps(mesh.to(device), cams, cfg.image_size, per_chunk, cfg.lighting)
    colors = None
    try:
        colors = texture_to_vertex_colors(mesh).textures.verts_features_packed().detach()  # (V, 3) for pictures
    except ValueError:
        pass
    return MultiviewData(
        images=images,
        silhouettes=silhouettes,
        **frame,
        verts=mesh.verts_packed().detach(),
        faces=mesh.faces_packed().detach(),
        colors=colors,
    )


def empty_like_config(cfg: DataConfig, device: torch.device) -> MultiviewData:
    """The data's shapes and cameras without the pictures: what a non-main DDP rank fills by broadcast."""
    check_data_config(cfg)
    s, n = cfg.image_size, len(view_plan(cfg)[0])
    return MultiviewData(
        images=torch.zeros(n, s, s, 3, device=device),
        silhouettes=torch.zeros(n, s, s, device=device),
        **_frame(cfg, device)[1],
    )


def build_shared(cfg: DataConfig, device: torch.device, dist, stage_dir: Path | None = None):
    """`build_steps` on the main rank, then broadcast the pictures to the other ranks (a no-op without DDP).
    A generator of progress messages that returns the MultiviewData.

    If the main rank fails (a bad upload), every rank raises, so none waits forever in a collective.
    """
    if not dist.distributed:
        return (yield from build_steps(cfg, device, stage_dir))
    error: Exception | None = None
    data = None
    if dist.is_main:
        try:
            data = yield from build_steps(cfg, device, stage_dir)
        except Exception as err:  # noqa: BLE001 - re-raised below after telling the other ranks
            error = err
    ok = dist.broadcast(torch.tensor([0.0 if error else 1.0], device=device))
    if error is not None:
        raise error
    if float(ok[0]) < 0.5:
        raise RuntimeError("The main rank could not build the multi-view data (see its error).")
    if data is None:
        data = empty_like_config(cfg, device)
    dist.broadcast(data.images)
    dist.broadcast(data.silhouettes)
    return data
