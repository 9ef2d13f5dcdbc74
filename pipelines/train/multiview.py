"""The multi-view data builder of Volume and NeRF: views of a mesh from known cameras, a held-out split, and
Plotly pictures of the cameras and of the ray sampler.

Conventions are PyTorch3D's (+X left, +Y up, +Z into the screen). Images are float in [0, 1], channels last,
on a black background (as in the book); silhouettes are 0/1 masks of the same size.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from pytorch3d.renderer import (
    BlendParams,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardPhongShader,
    Materials,
    NDCMultinomialRaysampler,
    RayBundle,
    look_at_view_transform,
)
from pytorch3d.structures import Meshes

from pipelines.core.paths import ASSETS_DIR

OBJECTS = ("blob", "textured-cube")
"""Built-in objects: `blob`, a colourful bumpy sphere made in code; `textured-cube`, the bundled UV-textured asset."""

MAX_VIEWS = 400
MAX_IMAGE_SIZE = 512
MIN_IMAGE_SIZE = 8
FOV_DEG = 60.0  # FoVPerspectiveCameras' default, as in the book


@dataclass(frozen=True)
class DataConfig:
    """The data-set settings every multi-view pipeline shares (Volume and NeRF inherit them)."""

    object: str = "blob"
    """Object to reconstruct when no file is uploaded: blob (a colourful bumpy sphere made in code) or textured-cube (the bundled UV-textured asset)."""
    files: tuple[str, ...] = ()
    """An uploaded mesh instead (OBJ with its MTL and texture, PLY, GLB, STL, OFF, or a zip); it is centred and scaled into the unit sphere."""
    n_views: int = 40
    """Views rendered around the object at a fixed elevation."""
    image_size: int = 128
    """Side of the square views in pixels."""
    elevation: float = 15.0
    """Camera elevation above the object's equator, degrees (the same for every view)."""
    distance: float = 2.7
    """Camera distance from the object's centre (the object fits in the unit sphere)."""
    azimuth_range: float = 180.0
    """Views span azimuths -range..+range degrees; 180 is a full circle without a repeated view."""
    holdout_every: int = 8
    """Every n-th view is held out for evaluation (never trained on); 8 holds out 5 of 40."""
    max_upload_mb: float = 200.0
    """Largest upload accepted, per file and in all."""


@dataclass
class MultiviewData:
    """Rendered views with their cameras. N views, each H = W = `image_size`.

    images (N, H, W, 3) float in [0, 1]; silhouettes (N, H, W) in {0, 1}; R (N, 3, 3) and T (N, 3) are
    PyTorch3D world-to-view rotations and translations (X_view = X_world @ R + T) of FoV-perspective cameras
    with field of view `fov` degrees; azimuth (N,) degrees; train_idx / test_idx index the views.
    `verts`, `faces`, `colors` are the (normalised) object for pictures; absent on non-main DDP ranks.
    """

    images: torch.Tensor
    silhouettes: torch.Tensor
    R: torch.Tensor
    T: torch.Tensor
    azimuth: torch.Tensor
    elevation: float
    distance: float
    fov: float
    train_idx: torch.Tensor
    test_idx: torch.Tensor
    verts: torch.Tensor | None = None
    faces: torch.Tensor | None = None
    colors: torch.Tensor | None = None

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def cameras(self, idx: torch.Tensor | list[int] | None = None) -> FoVPerspectiveCameras:
        """The FoV-perspective cameras of the views `idx` (all when None), on the data's device."""
        sel = slice(None) if idx is None else torch.as_tensor(idx, dtype=torch.long, device=self.R.device)
        return FoVPerspectiveCameras(R=self.R[sel], T=self.T[sel], fov=self.fov, device=self.device)


# --- settings checks -------------------------------------------------------------------------------------


def check_data_config(cfg: DataConfig) -> None:
    """Refuses impossible or absurd data settings with a sentence, before anything is allocated."""
    if not (2 <= cfg.n_views <= MAX_VIEWS):
        raise ValueError(
            f"{cfg.n_views} view(s) requested: a reconstruction needs at least 2 views (one to train on, one held "
            f"out to evaluate), and at most {MAX_VIEWS}."
        )
    if not (MIN_IMAGE_SIZE <= cfg.image_size <= MAX_IMAGE_SIZE):
        raise ValueError(
            f"Image size {cfg.image_size} px is out of range: choose {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} px."
        )
    if cfg.holdout_every < 2:
        raise ValueError("holdout_every must be at least 2 (every view held out would leave nothing to train on).")
    if len(split_indices(cfg.n_views, cfg.holdout_every)[1]) == 0:
        raise ValueError(
            f"With {cfg.n_views} views and every {cfg.holdout_every}th held out, no view is held out: "
            "use more views or a smaller holdout_every."
        )
    if not (1.2 <= cfg.distance <= 20.0) or not math.isfinite(cfg.distance):
        raise ValueError(
            f"Camera distance {cfg.distance} is out of range: the object fills the unit sphere; use 1.2-20."
        )
    if not (-89.0 <= cfg.elevation <= 89.0):
        raise ValueError(f"Elevation {cfg.elevation}° is out of range: use -89 to 89 degrees.")
    if not (0.0 < cfg.azimuth_range <= 180.0):
        raise ValueError(f"Azimuth range {cfg.azimuth_range}° is out of range: use (0, 180] degrees.")
    if not cfg.files and cfg.object not in OBJECTS:
        raise ValueError(f"Unknown object {cfg.object!r}: choose one of {', '.join(OBJECTS)}, or upload a mesh.")


def split_indices(n_views: int, holdout_every: int) -> tuple[list[int], list[int]]:
    """Train and held-out view indices: every `holdout_every`-th view, starting half a period in, is held out
    (at least one view, whenever there are two or more)."""
    test = list(range(min(holdout_every // 2, n_views - 1), n_views, holdout_every))
    train = [i for i in range(n_views) if i not in set(test)]
    return train, test


def view_azimuths(n_views: int, azimuth_range: float) -> torch.Tensor:
    """(N,) azimuths in degrees: a full circle without repeats for range 180, else -range..+range inclusive."""
    if azimuth_range >= 180.0:
        return torch.arange(n_views, dtype=torch.float32) * (360.0 / n_views) - 180.0
    return torch.linspace(-azimuth_range, azimuth_range, n_views)


# --- objects ---------------------------------------------------------------------------------------------


def blob_texture(height: int = 128, period: int = 256) -> torch.Tensor:
    """The blob's procedural texture, (height, 2 * period, 3) float: hue bands, wavy stripes and soft checks.

    The pattern repeats every `period` columns, so a face that crosses the u = 0 seam can use u + 1.
    """
    v = torch.linspace(0, 1, height)[:, None].expand(height, 2 * period)  # 0 at the top row
    u = (torch.arange(2 * period, dtype=torch.float32) / period)[None].expand(height, -1)  # [0, 2)
    two_pi = 2 * math.pi
    hue = (u + 0.35 * v) % 1.0
    stripes = 0.5 + 0.5 * torch.tanh(3.0 * torch.sin(two_pi * (5.0 * v + 0.35 * torch.sin(two_pi * 2.0 * u))))
    checks = 0.5 + 0.5 * torch.tanh(2.5 * torch.sin(two_pi * 6.0 * u) * torch.sin(two_pi * 3.0 * v))
    sat = 0.45 + 0.45 * checks
    value = 0.45 + 0.5 * stripes
    # HSV -> RGB, vectorised
    h6 = hue * 6.0
    k = torch.stack([(5.0 + h6) % 6.0, (3.0 + h6) % 6.0, (1.0 + h6) % 6.0], -1)  # (H, W, 3)
    rgb = value[..., None] - value[..., None] * sat[..., None] * (torch.minimum(k, 4.0 - k).clamp(0, 1))
    return rgb.clamp(0, 1)


def blob_mesh(level: int = 3, device: torch.device | str = "cpu") -> Meshes:
    """The default object: an ico-sphere with smooth bumps and a procedural UV texture (TexturesUV).

    Deterministic (no randomness), inside the unit sphere; 1,280 faces at level 3 (the CPU rasteriser's cost
    grows with faces x pixels, and the texture carries the detail).
    """
    from pytorch3d.renderer import TexturesUV
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(level, torch.device("cpu"))
    unit = sphere.verts_packed()  # (V, 3) on the unit sphere
    faces = sphere.faces_packed()  # (F, 3)
    x, y, z = unit.unbind(1)
    bumps = 0.13 * torch.sin(3.0 * x + 1.0) * torch.sin(2.5 * y + 0.5) + 0.09 * torch.cos(4.0 * z - 0.7 * x)
    radius = 0.78 + bumps + 0.12 * y.clamp(min=0) ** 2  # a slightly taller top
    verts = unit * radius[:, None]
    verts = verts / verts.norm(dim=1).max()  # fits the unit sphere
    # Spherical UVs per face corner; corners of a face that straddles the seam move to u + 1.
    u = torch.atan2(x, z) / (2 * math.pi) + 0.5  # (V,) in [0, 1]
    v = 1.0 - torch.acos(y.clamp(-1, 1)) / math.pi  # (V,) 1 at the top
    corner_u = u[faces]  # (F, 3)
    straddle = (corner_u.max(1).values - corner_u.min(1).values) > 0.5
    corner_u = torch.where(straddle[:, None] & (corner_u < 0.5), corner_u + 1.0, corner_u)
    verts_uvs = torch.stack([corner_u.reshape(-1) / 2.0, v[faces].reshape(-1)], 1)  # (3F, 2)
    faces_uvs = torch.arange(3 * len(faces)).reshape(-1, 3)  # (F, 3)
    device = torch.device(device)
    tex = TexturesUV(
        maps=blob_texture()[None].to(device), faces_uvs=[faces_uvs.to(device)], verts_uvs=[verts_uvs.to(device)]
    )
    return Meshes([verts.to(device)], [faces.to(device)], textures=tex)


def load_object(cfg: DataConfig, stage_dir: Path, device: torch.device) -> Meshes:
    """The mesh to render: the upload in `cfg.files` (staged under `stage_dir`), else the built-in `cfg.object`.

    Raises ValueError (mesh_io.MeshFileError is one) with a user sentence: a file without faces, no file, etc.
    """
    from pipelines.render import rendering

    if cfg.files:
        from pipelines.files import mesh_io

        limits = mesh_io.Limits(max_upload_mb=cfg.max_upload_mb)
        main = mesh_io.stage_upload(list(cfg.files), stage_dir, limits)
        return rendering.load_mesh_file(main, limits=limits, device=device)
    if cfg.object == "blob":
        return blob_mesh(3, device)
    if cfg.object == "textured-cube":
        path = ASSETS_DIR / "textured_cube.obj"
        if not path.is_file():
            raise ValueError(
                "The bundled textured cube is missing from assets/: run the asset script, or upload a mesh."
            )
        return rendering.load_mesh_file(path, device=device)
    raise ValueError(f"Unknown object {cfg.object!r}: choose one of {', '.join(OBJECTS)}, or upload a mesh.")


# --- rendering the views ---------------------------------------------------------------------------------


def view_cameras(
    azimuth: torch.Tensor, elevation: float, distance: float, device: torch.device, fov: float = FOV_DEG
) -> FoVPerspectiveCameras:
    """FoV-perspective cameras looking at the origin from `distance`, `elevation` and each azimuth (degrees)."""
    n = len(azimuth)
    R, T = look_at_view_transform(
        dist=torch.full((n,), float(distance)), elev=torch.full((n,), float(elevation)), azim=azimuth.cpu()
    )
    return FoVPerspectiveCameras(R=R.to(device), T=T.to(device), fov=fov, device=device)


def render_views(mesh: Meshes, cameras: FoVPerspectiveCameras, image_size: int, chunk: int = 8):
    """Hard-rasterised RGB (N, H, W, 3) and silhouettes (N, H, W) of `mesh` from each camera (see the steps)."""
    return finish(render_views_steps(mesh, cameras, image_size, chunk))


def render_views_steps(mesh: Meshes, cameras: FoVPerspectiveCameras, image_size: int, chunk: int = 4):
    """A generator that renders `chunk` views at a time, yielding a message after each chunk, and returns
    hard-rasterised RGB (N, H, W, 3) and silhouettes (N, H, W) of `mesh` from each camera.

    Lighting is a fixed world-space directional light plus ambient, diffuse only (no specular): the colour of a
    surface point then does not depend on the viewer, which is what a view-independent voxel grid can fit.
    """
    from pipelines.render.rendering import TiledMeshRasterizer, make_raster_settings

    device = mesh.device
    lights = DirectionalLights(
        direction=((0.35, 0.8, 0.5),),
        ambient_color=((0.55, 0.55, 0.55),),
        diffuse_color=((0.5, 0.5, 0.5),),
        specular_color=((0.0, 0.0, 0.0),),
        device=device,
    )
    materials = Materials(specular_color=((0.0, 0.0, 0.0),), device=device)
    blend = BlendParams(background_color=(0.0, 0.0, 0.0))
    # Built once; the cameras go with each chunk. bin_size None: tiles on the CPU, coarse-to-fine bins on a GPU.
    rasterizer = TiledMeshRasterizer(raster_settings=make_raster_settings(image_size, device=device)[0])
    shader = HardPhongShader(device=device, lights=lights, materials=materials, blend_params=blend)
    images, masks = [], []
    for start in range(0, len(cameras), chunk):
        cams = cameras[list(range(start, min(start + chunk, len(cameras))))]
        meshes = mesh.extend(len(cams))
        with torch.no_grad():
            fragments = rasterizer(meshes, cameras=cams)
            rgba = shader(fragments, meshes, cameras=cams)  # (B, H, W, 4)
        images.append(rgba[..., :3].clamp(0, 1))
        masks.append((fragments.pix_to_face[..., 0] >= 0).float())  # (B, H, W)
        yield f"rendered {start + len(cams)}/{len(cameras)} views"
    return torch.cat(images), torch.cat(masks)


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
    key = (cfg.object, cfg.n_views, cfg.image_size, cfg.elevation, cfg.distance, cfg.azimuth_range)
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
    train, test = split_indices(cfg.n_views, cfg.holdout_every)
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    for name, value in fields.items():
        if isinstance(value, torch.Tensor):
            fields[name] = value.to(device, copy=True)
    fields["train_idx"] = torch.tensor(train, dtype=torch.long, device=device)
    fields["test_idx"] = torch.tensor(test, dtype=torch.long, device=device)
    return MultiviewData(**fields)


def _frame(cfg: DataConfig, device: torch.device) -> tuple[FoVPerspectiveCameras, dict[str, Any]]:
    """The cameras and the picture-free fields of the data set (cameras, azimuths, held-out split)."""
    azimuth = view_azimuths(cfg.n_views, cfg.azimuth_range)  # (N,)
    cams = view_cameras(azimuth, cfg.elevation, cfg.distance, device)
    train, test = split_indices(cfg.n_views, cfg.holdout_every)
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
    images, silhouettes = yield from render_views_steps(mesh.to(device), cams, cfg.image_size, per_chunk)
    colors = None
    try:
        from pipelines.render.rendering import texture_to_vertex_colors

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
    s = cfg.image_size
    return MultiviewData(
        images=torch.zeros(cfg.n_views, s, s, 3, device=device),
        silhouettes=torch.zeros(cfg.n_views, s, s, device=device),
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


# --- rays --------------------------------------------------------------------------------------------------


def ray_grid(
    cameras: FoVPerspectiveCameras, image_size: int, n_pts_per_ray: int, min_depth: float, max_depth: float
) -> RayBundle:
    """One ray through every pixel centre of each camera, from the book's `NDCMultinomialRaysampler`.

    origins, directions (B, H, W, 3) (directions reach depth 1 in view space, not unit length), lengths
    (B, H, W, P) depths from `min_depth` to `max_depth`, xys (B, H, W, 2) NDC. Row i, column j is the
    pixel (i, j) of a PyTorch3D render from the same camera.
    """
    sampler = NDCMultinomialRaysampler(
        image_width=image_size,
        image_height=image_size,
        n_pts_per_ray=n_pts_per_ray,
        min_depth=min_depth,
        max_depth=max_depth,
    )
    return sampler(cameras)


def rays_figure_traces(
    cameras: FoVPerspectiveCameras,
    image_size: int,
    n_pts_per_ray: int,
    min_depth: float,
    max_depth: float,
    rays_per_side: int = 5,
    max_points_per_ray: int = 12,
) -> list[go.Scatter3d]:
    """Plotly traces of a sparse grid of rays of the first camera, and their sample points."""
    bundle = ray_grid(cameras[[0]], image_size, n_pts_per_ray, min_depth, max_depth)
    pick = torch.linspace(0, image_size - 1, rays_per_side).round().long()
    origins = bundle.origins[0][pick][:, pick].reshape(-1, 3)
    dirs = bundle.directions[0][pick][:, pick].reshape(-1, 3)
    lengths = bundle.lengths[0][pick][:, pick].reshape(len(origins), -1)
    step = max(1, lengths.shape[1] // max_points_per_ray)
    pts = origins[:, None] + dirs[:, None] * lengths[:, ::step, None]  # (R, P', 3)
    near = origins + dirs * min_depth
    far = origins + dirs * max_depth
    seg = torch.stack([near, far, torch.full_like(near, float("nan"))], 1).reshape(-1, 3).cpu().numpy()
    p = pts.reshape(-1, 3).cpu().numpy()
    return [
        go.Scatter3d(
            x=seg[:, 0], y=seg[:, 1], z=seg[:, 2], mode="lines", line=dict(color="#d62728", width=4), name="rays"
        ),
        go.Scatter3d(
            x=p[:, 0],
            y=p[:, 1],
            z=p[:, 2],
            mode="markers",
            marker=dict(size=1.5, color="#2ca02c"),
            name=f"samples ({n_pts_per_ray} per ray" + (f", 1 in {step} shown)" if step > 1 else ")"),
        ),
    ]


def cameras_figure(
    data: MultiviewData,
    *,
    rays: bool = False,
    n_pts_per_ray: int = 64,
    min_depth: float = 0.1,
    max_depth: float = 3.0,
    max_faces: int = 20_000,
) -> go.Figure:
    """The object with every camera's frustum (training views blue, held-out orange) and, if `rays`, the ray
    sampler of the first camera: a 5x5 grid of its rays from `min_depth` to `max_depth` with their samples."""
    fig = go.Figure()
    if data.verts is not None and data.faces is not None and len(data.faces):
        v = data.verts.cpu().numpy()
        f = data.faces.cpu().numpy()
        if len(f) > max_faces:
            f = f[:: math.ceil(len(f) / max_faces)]
        mesh_kw = {}
        if data.colors is not None:
            c = (data.colors.cpu().clamp(0, 1).numpy() * 255).astype(int)
            mesh_kw["vertexcolor"] = [f"rgb({r},{g},{b})" for r, g, b in c]
        else:
            mesh_kw["color"] = "#b0b8d0"
        fig.add_trace(
            go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], name="object", **mesh_kw)
        )
    cams = data.cameras()
    depth = 0.35 * data.distance
    corners_ndc = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], device=data.device)
    xyd = torch.cat([corners_ndc, torch.full((4, 1), depth, device=data.device)], 1)  # (4, 3)
    corners = cams.unproject_points(xyd[None].expand(len(cams), 4, 3), world_coordinates=True)  # (N, 4, 3)
    centres = cams.get_camera_center()  # (N, 3)
    test = set(data.test_idx.tolist())
    for group, color, label in ((False, "#1f77b4", "training cameras"), (True, "#ff7f0e", "held-out cameras")):
        segs = []
        for i in range(len(cams)):
            if (i in test) != group:
                continue
            c, q = centres[i].cpu().numpy(), corners[i].cpu().numpy()
            for k in range(4):
                segs += [c, q[k], [np.nan] * 3]
            segs += [q[0], q[1], q[2], q[3], q[0], [np.nan] * 3]
        if segs:
            s = np.asarray(segs, dtype=np.float64)
            fig.add_trace(
                go.Scatter3d(x=s[:, 0], y=s[:, 1], z=s[:, 2], mode="lines", line=dict(color=color, width=3), name=label)
            )
    if rays:
        for trace in rays_figure_traces(cams, data.image_size, n_pts_per_ray, min_depth, max_depth):
            fig.add_trace(trace)
    fig.update_layout(
        scene=dict(
            aspectmode="data",
            xaxis_title="x",
            yaxis_title="y (up)",
            zaxis_title="z",
            camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=1.2, y=0.9, z=1.6)),
        ),
        height=480,
        margin=dict(l=0, r=0, t=30, b=0),
        legend=dict(orientation="h"),
        title=f"{len(cams)} cameras ({len(test)} held out)" + (" with the rays of camera 0" if rays else ""),
    )
    return fig


def contact_sheet(data: MultiviewData, max_views: int = 40, cols: int = 8) -> np.ndarray:
    """The views (top) and their silhouettes (bottom) tiled, uint8 (H, W, 3); held-out views get an orange frame."""
    from pipelines.core.events import to_uint8
    from pipelines.render.rendering import image_grid

    n = min(max_views, len(data.images))
    test = set(data.test_idx.tolist())
    tiles, sils = [], []
    for i in range(n):
        img = data.images[i].clone()
        sil = data.silhouettes[i][..., None].expand(-1, -1, 3).clone()
        if i in test:
            for t in (img, sil):
                border = torch.tensor([1.0, 0.5, 0.05], device=t.device)
                t[:2], t[-2:], t[:, :2], t[:, -2:] = border, border, border, border
        tiles.append(img)
        sils.append(sil)
    cols = min(cols, n)
    top, bottom = image_grid(tiles, cols), image_grid(sils, cols)
    gap = torch.ones(6, top.shape[1], 3, device=top.device)
    return to_uint8(torch.cat([top, gap, bottom], 0))


def summary(data: MultiviewData) -> dict:
    """JSON summary of the data set (for the UI and the run's info)."""
    return {
        "views": int(len(data.images)),
        "image_size": data.image_size,
        "train_views": data.train_idx.tolist(),
        "held_out_views": data.test_idx.tolist(),
        "elevation_deg": data.elevation,
        "distance": data.distance,
        "fov_deg": data.fov,
        "azimuths_deg": [round(float(a), 2) for a in data.azimuth.tolist()],
        "mean_silhouette_coverage": round(float(data.silhouettes.mean()), 4),
        "object_faces": None if data.faces is None else int(len(data.faces)),
    }


# --- generators ------------------------------------------------------------------------------------------


def relay(gen, to_event):
    """Yield `to_event(item)` for each item `gen` yields; return `gen`'s result (for `x = yield from relay(...)`)."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        yield to_event(item)


def finish(gen):
    """Run a render generator (as `render_cameras` returns) to its end, dropping its progress events; its result."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
