"""NeRF: fit a neural radiance field to multi-view renders (Monte Carlo rays, emission-absorption compositing)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch3d.renderer import EmissionAbsorptionRaymarcher, ImplicitRenderer, ray_bundle_to_ray_points

from pipelines.core import ddp
from pipelines.core.config import to_jsonable
from pipelines.core.events import Done, Event, Preview, to_uint8
from pipelines.core.headline import Headline
from pipelines.core.weights import check_archive
from pipelines.nerf import fields
from pipelines.render.book_figures import BookFigure
from pipelines.train import generators, ray_training, raymarching
from pipelines.train.multiview_data import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, MultiviewData, check_data_config
from pipelines.train.multiview_render import view_cameras

HEADLINE = (Headline("psnr_heldout", "Held-out PSNR", "dB", "psnr_heldout_initial"),)
"""The result card's number: PSNR on views the field never saw (from the untrained field's)."""

CHECKPOINT_FORMAT = "3d-studio-nerf"
CHECKPOINT_VERSION = 1
MAX_CHECKPOINT_MB = 2048
MAX_POINTS_PER_STEP = 20_000_000  # the book's step is 6 x 750 x 128 = 576k points
MAX_POINTS_PER_CHUNK = 4_000_000


FIGURES = (
    BookFigure(
        "6.3",
        "Training panel: render, target and silhouette",
        "While the NeRF trains, the book shows every 100 iterations the current render of a view next to its target "
        "image and the rendered silhouette. Here each row is one evaluation of the first held-out view: render, "
        "rendered silhouette, target, target silhouette.",
        "nerf",
        {"training_panel": True, "eval_every": 100},
        "training_panel",
    ),
    BookFigure(
        "6.4",
        "Novel views of the trained NeRF (3×5)",
        "After training, the book renders the radiance field from 15 cameras on a circle around the cow and shows "
        "them in a 3 × 5 grid.",
        "nerf",
        {"orbit_frames": 15, "novel_grid_cols": 5},
        "novel_views",
    ),
)
"""The book's chapter-6 figures made by this pipeline."""


@dataclass(frozen=True)
class Config(ray_training.RayTrainConfig):
    field: str = "mlp"
    """Radiance field: mlp (the book's harmonic-embedding MLP) or grid (multi-resolution feature grids with a small MLP head: fast on a CPU)."""
    n_harmonics: int = 60
    """MLP field: octaves of the harmonic embedding of points and directions."""
    omega0: float = 0.1
    """MLP field: frequency of the first octave."""
    hidden: int = 256
    """MLP field: width of its two Softplus layers."""
    density_bias: float = -1.5
    """Initial bias of the density output (the book: -1.5 before Softplus(beta=10), a nearly empty start)."""
    grid_resolutions: tuple[int, ...] = (16, 32, 64)
    """Grid field: voxels per side of each feature grid."""
    grid_features: int = 4
    """Grid field: features per voxel in each grid."""
    grid_hidden: int = 32
    """Grid field: width of the MLP head."""
    stratified: bool = False
    """Jitter training samples within +-half a spacing (stratified sampling); renders always use the even samples."""
    eval_views: int = 0
    """Held-out views rendered at intermediate evaluations (0 = all); the final evaluation uses all."""
    mesh_resolution: int = 96
    """Marching-cubes grid per side over the bound (or the unit sphere's box)."""
    bound_radius: float = 1.05
    """The network is evaluated only at the samples (the same 128 depths per ray) inside this sphere around the
    object, which fills the unit sphere; density is zero outside. A bound, not the tutorial's unbounded sampling
    (whose renders of this object it matches): 0 evaluates whole rays."""
    monte_carlo_rays: bool = True
    steps: int = 3000
    chunk_rays: int = 6000
    eval_every: int = 250
    render_scale: int = 2
    mesh_level: float = 0.2
    """Per-sample opacity 1 - exp(-sigma) at which marching cubes draws the surface."""

    @classmethod
    def quick(cls) -> Config:
        # The grid field (16^3 to 128^3 feature grids) on 64 px views, 64 samples per ray inside a bound sphere,
        # 512 rays per view, lr 0.1 from a denser start (bias -2): on the cow 32.8 dB held-out (23.4 dB on its
        # pixels, SSIM 0.98); two to four minutes on two busy CPU cores (see bench/nerf.py for the book's MLP).
        return cls(
            field="grid",
            image_size=64,
            grid_resolutions=(16, 32, 64, 128),
            density_bias=-2.0,
            n_pts_per_ray=64,
            min_depth=1.6,
            max_depth=3.8,
            bound_radius=1.05,
            monte_carlo_rays=False,
            rays_per_image=512,
            batch_cameras=6,
            steps=100,
            lr=0.1,
            chunk_rays=8192,
            eval_every=25,
            eval_views=2,
            orbit_frames=24,
            mesh_resolution=64,
            render_scale=1,
        )

    @classmethod
    def tiny(cls) -> Config:
        # The chunky blob seen from 15° under the diffuse light: 32 px views of 12 cameras cannot resolve the cow's
        # legs in 80 steps, and at elevation 0 its top and bottom are hardly seen (the tests measure the method).
        return cls(
            object="blob",
            elevation=15.0,
            lighting="diffuse",
            field="grid",
            n_views=12,
            image_size=32,
            holdout_every=4,
            density_bias=-4.0,
            grid_resolutions=(16, 32),
            n_pts_per_ray=40,
            min_depth=1.6,
            max_depth=3.8,
            bound_radius=1.05,
            monte_carlo_rays=False,
            rays_per_image=256,
            batch_cameras=4,
            steps=80,
            lr=0.03,
            chunk_rays=4096,
            eval_every=40,
            orbit_frames=6,
            mesh_resolution=32,
            render_scale=1,
        )


FIELD_SETTINGS = ("density_bias", "lr", "bound_radius", "min_depth", "max_depth", "n_pts_per_ray")
"""What must change with the field: the grid field trains at a higher lr inside a bound sphere, the MLP does not."""


def with_field(cfg: Config, kind: str) -> Config:
    """`cfg` with another field, and that field's settings taken from the preset that uses it (quick: grid,
    full: the book's MLP); everything else (data, steps, rays) is kept."""
    template = Config.quick() if kind == "grid" else Config()
    return dataclasses.replace(cfg, field=kind, **{name: getattr(template, name) for name in FIELD_SETTINGS})


def field_args(cfg: Config) -> dict[str, Any]:
    """The field's constructor arguments (stored in checkpoints)."""
    if cfg.field == "mlp":
        return {
            "n_harmonics": cfg.n_harmonics,
            "omega0": cfg.omega0,
            "hidden": cfg.hidden,
            "density_bias": cfg.density_bias,
            "seed": cfg.seed,
        }
    return {
        "resolutions": list(cfg.grid_resolutions),
        "features": cfg.grid_features,
        "hidden": cfg.grid_hidden,
        "bound": cfg.bound_radius if cfg.bound_radius > 0 else 1.1,
        "density_bias": cfg.density_bias,
        "seed": cfg.seed,
    }


def check_config(cfg: Config) -> None:
    """Refuses absurd settings with a sentence, before anything is allocated."""
    check_data_config(cfg)
    if cfg.field not in fields.FIELDS:
        raise ValueError(f"Unknown field {cfg.field!r}: choose one of {', '.join(fields.FIELDS)}.")
    n_params = fields.count_params(cfg.field, field_args(cfg))
    if n_params > fields.MAX_PARAMS:
        raise ValueError(
            f"This field would have {n_params / 1e6:.0f}M parameters; the limit is {fields.MAX_PARAMS / 1e6:.0f}M."
        )
    ray_training.check_sampling(cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth)
    if cfg.bound_radius < 0 or (0 < cfg.bound_radius < 1.0):
        raise ValueError("bound_radius must be 0 (whole rays) or at least 1 (the object fills the unit sphere).")
    if not (1 <= cfg.steps <= 1_000_000) or cfg.batch_cameras < 1 or cfg.rays_per_image < 1 or cfg.chunk_rays < 1:
        raise ValueError("steps must be 1-1,000,000; batch_cameras, rays_per_image and chunk_rays at least 1.")
    if not (0.0 < cfg.lr <= 1.0) or not (0.0 < cfg.lr_drop_at <= 1.0):
        raise ValueError("lr must be in (0, 1] and lr_drop_at in (0, 1].")
    points = min(cfg.batch_cameras, cfg.n_views) * cfg.rays_per_image * cfg.n_pts_per_ray
    if points > MAX_POINTS_PER_STEP:
        raise ValueError(
            f"One step would sample {points / 1e6:.0f}M points (cameras x rays x samples); the limit is "
            f"{MAX_POINTS_PER_STEP / 1e6:.0f}M: use fewer cameras, rays or samples."
        )
    if cfg.chunk_rays * cfg.n_pts_per_ray > MAX_POINTS_PER_CHUNK:
        raise ValueError(
            f"A chunk of {cfg.chunk_rays} rays x {cfg.n_pts_per_ray} samples is too big for memory: "
            f"keep chunk_rays x n_pts_per_ray under {MAX_POINTS_PER_CHUNK / 1e6:.0f}M."
        )
    if not (8 <= cfg.mesh_resolution <= 256):
        raise ValueError(f"Mesh resolution {cfg.mesh_resolution} is out of range: use 8 to 256.")
    if cfg.orbit_frames < 0 or cfg.orbit_frames > 720 or cfg.eval_every < 1 or cfg.eval_views < 0:
        raise ValueError("orbit_frames must be 0-720, eval_every at least 1, eval_views at least 0.")


class FieldFunction:
    """The volumetric function PyTorch3D's ImplicitRenderer calls: ray points -> (opacity, colour) per sample.

    Opacity of a sample is alpha = 1 - exp(-sigma) (the book's convention), forced to 0 outside the bound sphere.
    """

    def __init__(self, field: torch.nn.Module, bound_radius: float = 0.0) -> None:
        self.field = field
        self.bound_radius = bound_radius

    def __call__(self, ray_bundle, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        points = ray_bundle_to_ray_points(ray_bundle)  # (1, M, K, 3)
        if self.bound_radius <= 0:
            sigma, rgb = self.field(points, ray_bundle.directions)
            return 1.0 - torch.exp(-sigma), rgb
        # Evaluate only the samples inside the bound sphere (packed), and scatter them back.
        shape = points.shape[:-1]  # (1, M, K)
        flat = points.reshape(-1, 3)
        idx = (flat.square().sum(-1) <= self.bound_radius**2).nonzero()[:, 0]  # (N,)
        ray = idx // shape[-1]  # each sample's ray
        if isinstance(self.field, fields.HarmonicMLPField):  # the direction term once per ray
            sigma, rgb = self.field.forward_packed(flat[idx], ray_bundle.directions.reshape(-1, 3), ray)
        else:  # each point a one-sample ray: (N, 1, 1), (N, 1, 3)
            sigma, rgb = (t[:, 0] for t in self.field(flat[idx][:, None], ray_bundle.directions.reshape(-1, 3)[ray]))
        alpha = torch.zeros(len(flat), 1, device=flat.device).index_copy(0, idx, 1.0 - torch.exp(-sigma))
        colors = torch.zeros(len(flat), 3, device=flat.device).index_copy(0, idx, rgb)
        return alpha.reshape(*shape, 1), colors.reshape(*shape, 3)


def make_renderer() -> ImplicitRenderer:
    return ImplicitRenderer(raysampler=raymarching.GivenRays(), raymarcher=EmissionAbsorptionRaymarcher())


def render_fn_for(field: torch.nn.Module, bound_radius: float, renderer: ImplicitRenderer | None = None):
    """bundle -> (rgb (1, M, 3), alpha (1, M)) through the ImplicitRenderer."""
    renderer = renderer or make_renderer()
    function = FieldFunction(field, bound_radius)

    def fn(bundle):
        out, _ = renderer(cameras=None, volumetric_function=function, rays=bundle)  # (1, M, 4)
        return out[..., :3], out[..., 3]

    return fn


class _FieldTrainer:
    """The radiance field as ray_training's RayModel: every chunk renders through PyTorch3D's ImplicitRenderer."""

    def __init__(self, field: torch.nn.Module, bound_radius: float) -> None:
        self.field = field
        self.renderer = make_renderer()
        self.function = FieldFunction(field, bound_radius)
        self.fn = render_fn_for(field, bound_radius, self.renderer)

    def parameters(self):
        return self.field.parameters()

    def train_renderer(self):
        return lambda bundle, *_: self.renderer(cameras=None, volumetric_function=self.function, rays=bundle)[0]

    def finish_step(self) -> None:
        pass

    def eval_renderer(self):
        return self.fn


def run(cfg: Config) -> Iterator[Event]:
    """Build the views, train the field (Progress every step or chunk, Preview at each evaluation), then save the
    checkpoint and write the orbit video, the held-out picture and the marching-cubes mesh."""
    check_config(cfg)
    yield from ray_training.run_distributed(cfg, _run)


def _run(cfg: Config, dist: ddp.Dist) -> Iterator[Event]:
    s = yield from ray_training.open_session(cfg, dist)
    field = fields.make_field(cfg.field, field_args(cfg)).to(s.device)
    dist.broadcast_module(field)
    trainer = _FieldTrainer(field, cfg.bound_radius)
    optimizer = torch.optim.Adam(field.parameters(), lr=cfg.lr)
    result = yield from ray_training.train(
        s, trainer, optimizer, what="field", eval_views=cfg.eval_views, jitter=cfg.stratified
    )
    if not dist.is_main:
        yield Done(metrics={}, files={}, info={"rank": dist.rank})
        return
    out_dir = s.out_dir
    assert out_dir is not None and result.images is not None
    psnr_final = result.history[-1][1]
    files: dict[str, Path] = {}
    files["heldout"] = yield from s.heldout_picture(trainer.eval_renderer(), result.images)
    files["checkpoint"] = save_checkpoint(out_dir / "nerf.pt", field, cfg, s.data, {"psnr_heldout": psnr_final})

    s.state["message"] = "marching cubes"
    yield s.progress()
    bound = cfg.bound_radius if cfg.bound_radius > 0 else 1.1
    verts, faces, colors = yield from field_mesh(field, bound, cfg.mesh_resolution, cfg.mesh_level, cfg.chunk_rays * 16, s.ticker, s.progress)  # fmt: skip
    mesh_info: dict[str, Any] = {"vertices": int(len(verts)), "faces": int(len(faces))}
    if len(faces):
        files.update(raymarching.export_mesh(verts, faces, colors, out_dir / "mesh"))
        mesh_info.update(bbox_min=verts.min(0).values.tolist(), bbox_max=verts.max(0).values.tolist())
        yield Preview(cfg.steps, mesh=files["mesh_glb"], caption=f"marching cubes: {len(faces)} faces")

    video = yield from s.orbit_video(trainer.eval_renderer())
    if video is not None:
        files["video"] = video
    metrics = {
        "mesh_faces": float(mesh_info["faces"]),
        "field_params": float(sum(p.numel() for p in field.parameters())),
    }
    yield ray_training.finish(s, result, metrics, files, {"mesh": mesh_info, "checkpoint": files["checkpoint"]})


def field_mesh(
    field: torch.nn.Module,
    bound: float,
    resolution: int,
    level: float,
    chunk: int | raymarching.Chunker,
    ticker,
    progress,
):
    """Marching cubes of the field's per-sample opacity on a grid over [-bound, bound]^3 (a generator that
    yields progress when due; returns verts (V, 3) world, faces (F, 3), colours (V, 3))."""
    device = next(field.parameters()).device
    r = resolution
    axis = torch.linspace(-bound, bound, r, device=device)
    zz, yy, xx = torch.meshgrid(axis, axis, axis, indexing="ij")
    points = torch.stack([xx, yy, zz], -1).reshape(-1, 3)  # (r^3, 3), x fastest: density[z, y, x]
    inside = points.square().sum(-1) <= bound**2
    alpha = torch.zeros(len(points), device=device)
    chunker = chunk if isinstance(chunk, raymarching.Chunker) else raymarching.Chunker(chunk)
    for span in chunker.spans(len(points)):
        p = points[span]
        with torch.no_grad():
            sigma, _ = field(p[:, None], -p)  # one-sample rays looking at each point from outside
            alpha[span] = 1.0 - torch.exp(-sigma[:, 0, 0])
        chunker.record()
        if ticker.due():
            yield progress()
            ticker.reset()
    alpha = torch.where(inside, alpha, torch.zeros_like(alpha)).reshape(r, r, r)
    empty = torch.zeros(0, 3, device=device), torch.zeros(0, 3, dtype=torch.long, device=device), None
    if not (float(alpha.min()) < level < float(alpha.max())):
        return empty
    local, faces = raymarching.marching_cubes_outward(raymarching.fill_cavities(alpha.cpu(), level), level)
    if len(faces) == 0:
        return empty
    verts = local.to(device) * bound  # local [-1, 1] (x, y, z) -> world
    faces = faces.to(device)
    with torch.no_grad():
        _, colors = field(verts[:, None], -verts)
    return verts, faces, colors[:, 0]


# --- checkpoints ---------------------------------------------------------------------------------------------


def save_checkpoint(
    path: Path, field: torch.nn.Module, cfg: Config, data: MultiviewData, metrics: dict[str, float]
) -> Path:
    """Save the field's state dict with what re-rendering needs (tensors and plain values only)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "field": cfg.field,
        "field_args": field_args(cfg),
        "state_dict": {k: v.detach().cpu() for k, v in field.state_dict().items()},
        "render": {
            "n_pts_per_ray": cfg.n_pts_per_ray,
            "min_depth": cfg.min_depth,
            "max_depth": cfg.max_depth,
            "bound_radius": cfg.bound_radius,
            "image_size": data.image_size,
            "elevation": data.elevation,
            "distance": data.distance,
            "fov": data.fov,
        },
        "config": to_jsonable(dataclasses.replace(cfg, out_dir=None)),
        "metrics": {k: float(v) for k, v in metrics.items()},
    }
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The field of a NeRF checkpoint (eval mode, on `device`) and its metadata (`render`, `config`, `metrics`).

    Loaded with `weights_only=True` (no code runs); anything unreadable or inconsistent raises ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint {path.name} does not exist.")
    if path.stat().st_size > MAX_CHECKPOINT_MB * 2**20:
        raise ValueError(f"Checkpoint {path.name} is larger than {MAX_CHECKPOINT_MB} MB.")
    check_archive(path, MAX_CHECKPOINT_MB)  # a zip bomb is refused before torch.load unpacks it
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling, zip or format failure is a bad file
        raise ValueError(f"{path.name} is not a readable NeRF checkpoint ({type(err).__name__}).") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path.name} is not a NeRF checkpoint of this app (no '{CHECKPOINT_FORMAT}' format tag).")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path.name} has checkpoint version {payload.get('version')}; this app reads version 1.")
    try:
        kind, args, state, render = payload["field"], payload["field_args"], payload["state_dict"], payload["render"]
        field = fields.make_field(str(kind), dict(args))
        field.load_state_dict(state, strict=True)
        render = {
            "n_pts_per_ray": int(render["n_pts_per_ray"]),
            "min_depth": float(render["min_depth"]),
            "max_depth": float(render["max_depth"]),
            "bound_radius": float(render["bound_radius"]),
            "image_size": int(render["image_size"]),
            "elevation": float(render["elevation"]),
            "distance": float(render["distance"]),
            "fov": float(render["fov"]),
        }
        # The renderer trusts these: refuse what would allocate absurdly, divide by zero or sample nothing.
        ray_training.check_sampling(render["n_pts_per_ray"], render["min_depth"], render["max_depth"])
        if not (render["bound_radius"] == 0 or 1.0 <= render["bound_radius"] <= 10.0):
            raise ValueError(f"bound_radius {render['bound_radius']} is not 0 or 1-10")
        if not (0.0 < render["fov"] < 180.0):
            raise ValueError(f"field of view {render['fov']} is not between 0 and 180 degrees")
        if not all(math.isfinite(render[k]) for k in ("elevation", "distance")):
            raise ValueError("the training camera's elevation or distance is not finite")
    except ValueError as err:
        raise ValueError(f"{path.name} cannot be used: {err}") from None
    except Exception as err:  # noqa: BLE001 - missing keys, wrong shapes, wrong types
        raise ValueError(f"{path.name} is damaged or inconsistent: {type(err).__name__}: {err}") from None
    for t in field.state_dict().values():
        if not torch.isfinite(t).all():
            raise ValueError(f"{path.name} holds NaN or infinite weights.")
    meta = {"render": render, "config": payload.get("config", {}), "metrics": payload.get("metrics", {}), "field": kind}
    return field.to(device).eval(), meta


def render_checkpoint(
    path: str | Path,
    *,
    azimuth: float = 30.0,
    elevation: float | None = None,
    distance: float | None = None,
    image_size: int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Render one view of a saved field: uint8 (H, W, 3). Unset elevation, distance and size come from training."""
    field, meta = load_checkpoint(path, device)
    r = meta["render"]
    size = int(image_size or r["image_size"])
    if not (MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE):
        raise ValueError(f"Image size {size} px is out of range: choose 8 to {MAX_IMAGE_SIZE} px.")
    elev = r["elevation"] if elevation is None else float(elevation)
    dist = r["distance"] if distance is None else float(distance)
    if not (-89.0 <= elev <= 89.0) or not (1.2 <= dist <= 20.0):
        raise ValueError("Elevation must be -89 to 89 degrees and distance 1.2 to 20.")
    device = torch.device(device)
    cams = view_cameras(torch.tensor([float(azimuth)]), elev, dist, device, fov=r["fov"])
    images, _ = generators.finish(
        raymarching.render_cameras(
            render_fn_for(field, r["bound_radius"]),
            cams,
            size,
            r["n_pts_per_ray"],
            r["min_depth"],
            r["max_depth"],
            8192,
            raymarching.Ticker(1e9),
            lambda: None,
            r["bound_radius"],
        )  # fmt: skip
    )
    return to_uint8(images[0])
