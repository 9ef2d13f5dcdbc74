"""Mesh fitting: deform an ico-sphere onto a target point cloud or mesh by chamfer distance plus edge, normal and
Laplacian regularisers (the book's chapter 3), with the book's three experiments side by side."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress, to_uint8
from pipelines.render.rendering import sample_surface

TARGETS = ("figure", "blob", "cube", "peanut", "spiky")
LAPLACIANS = ("uniform", "cot", "cotcurv")
EXPERIMENTS = ("single", "book")
EXPORTS = ("obj", "ply", "glb")
MIN_POINTS = 10
# The book's three experiments: (name, keep edge weight, keep normal and Laplacian weights).
BOOK_EXPERIMENTS = (("none", False, False), ("edge", True, False), ("all", True, True))


# ----------------------------------------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class PointTarget:
    """A target in the unit-sphere frame: points (P, 3), normals (P, 3) or None, and the map back to the file's
    frame (original = points · scale + centre)."""

    points: torch.Tensor
    normals: torch.Tensor | None
    centre: torch.Tensor
    scale: float
    source: str
    warnings: list[str]


def check_points(points: np.ndarray | torch.Tensor, what: str = "The target") -> None:
    """Raise ValueError with one sentence when a point set cannot be fitted: empty, too few, NaN/inf, or a single spot."""
    pts = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points)
    if pts.ndim != 2 or pts.shape[-1] != 3:
        raise ValueError(f"{what} must be a list of 3D points (N × 3), got shape {tuple(pts.shape)}.")
    n = pts.shape[0]
    if n == 0:
        raise ValueError(f"{what} is empty: it has no points.")
    bad = int((~torch.isfinite(pts).all(dim=1)).sum())
    if bad:
        raise ValueError(f"{what} has {bad} of {n} points with NaN or infinite coordinates.")
    if n < MIN_POINTS:
        raise ValueError(
            f"{what} has only {n} point{'s' if n != 1 else ''}; fitting a surface needs at least {MIN_POINTS}."
        )
    if float((pts - pts.mean(0)).norm(dim=1).max()) <= 1e-9:
        raise ValueError(
            f"All {n} points of {what.lower().removeprefix('the ')} lie at one spot, so there is no shape to fit."
        )


def _radial_shape(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A star-shaped procedural mesh: a level-5 ico-sphere with radius r(direction). Returns verts, faces."""
    from pytorch3d.utils import ico_sphere

    sphere = ico_sphere(5)
    u = sphere.verts_packed()  # (V, 3) unit directions
    g = torch.Generator().manual_seed(3)  # the shapes are fixed; cfg.seed only drives sampling and noise
    if name == "blob":
        centres = torch.nn.functional.normalize(torch.randn(6, 3, generator=g), dim=1)
        weights = torch.tensor([0.45, -0.3, 0.35, 0.25, -0.2, 0.3])
        r = 1.0 + (weights * torch.exp(3.0 * (u @ centres.T - 1.0))).sum(1)
    elif name == "cube":
        r = 1.0 / (u.abs() ** 6).sum(1) ** (1 / 6)
    elif name == "peanut":
        r = 0.55 + 0.45 * u[:, 0] ** 2 + 0.1 * u[:, 1]
    elif name == "spiky":
        dirs = torch.nn.functional.normalize(torch.randn(10, 3, generator=g), dim=1)
        r = 0.75 + 0.5 * (u @ dirs.T).clamp(min=0).pow(24).amax(1)
    else:
        raise ValueError(f"Unknown procedural target {name!r}: choose {', '.join(TARGETS)}.")
    return u * r[:, None], sphere.faces_packed()


# A standing figure as capsules (start, end, radius), like the book's pedestrian scan.
_FIGURE = (
    ((0.0, 0.05, 0.0), (0.0, 0.55, 0.0), 0.2),  # torso
    ((0.0, 0.93, 0.0), (0.0, 0.95, 0.02), 0.16),  # head
    ((0.0, 0.6, 0.0), (0.0, 0.8, 0.0), 0.07),  # neck
    ((0.22, 0.6, 0.0), (0.4, 0.08, 0.06), 0.065),  # arms
    ((-0.22, 0.6, 0.0), (-0.38, 0.06, -0.04), 0.065),
    ((0.1, 0.05, 0.0), (0.14, -0.85, 0.02), 0.09),  # legs
    ((-0.1, 0.05, 0.0), (-0.15, -0.85, -0.04), 0.09),
)


def _figure_points(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (n, 3) and normals on the surface of a union of capsules (points inside other capsules removed)."""
    caps = torch.tensor([[*a, *b, r] for a, b, r in _FIGURE])  # (C, 7)
    a, b, r = caps[:, 0:3], caps[:, 3:6], caps[:, 6]
    length = (b - a).norm(dim=1)
    area = 2 * math.pi * r * length + 4 * math.pi * r**2
    points, normals, have = [], [], 0
    while have < n:
        m = 2 * n
        which = torch.multinomial(area, m, replacement=True, generator=generator)
        t = torch.rand(m, 1, generator=generator)
        d = torch.nn.functional.normalize(torch.randn(m, 3, generator=generator), dim=1)
        q = a[which] + t * (b[which] - a[which]) + r[which, None] * d
        # project onto the chosen capsule's surface
        ab = b[which] - a[which]
        s = (((q - a[which]) * ab).sum(1) / (ab * ab).sum(1).clamp(min=1e-12)).clamp(0, 1)
        axis = a[which] + s[:, None] * ab
        nrm = torch.nn.functional.normalize(q - axis, dim=1)
        p = axis + r[which, None] * nrm
        # signed distance of p to every capsule; keep points outside all the others
        ab_all = (b - a)[None]  # (1, C, 3)
        s_all = (((p[:, None] - a[None]) * ab_all).sum(-1) / (ab_all * ab_all).sum(-1).clamp(min=1e-12)).clamp(0, 1)
        sdf = (p[:, None] - (a[None] + s_all[..., None] * ab_all)).norm(dim=-1) - r[None]  # (m, C)
        sdf[torch.arange(m), which] = 1.0
        keep = (sdf > -1e-4).all(1)
        points.append(p[keep])
        normals.append(nrm[keep])
        have += int(keep.sum())
    return torch.cat(points)[:n], torch.cat(normals)[:n]


def _normalise(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    centre = (points.amax(0) + points.amin(0)) / 2
    scale = float((points - centre).norm(dim=1).amax())
    return (points - centre) / scale, centre, scale


def load_target(cfg: Config, generator: torch.Generator) -> PointTarget:
    """The clean target points in the unit-sphere frame, from an upload (mesh: sampled; cloud: subsampled when
    larger than `target_points`) or a procedural shape."""
    warnings: list[str] = []
    if cfg.target_files:
        from pipelines.files import mesh_io

        main = mesh_io.stage_upload(
            cfg.target_files, Path(cfg.out_dir) / "upload", mesh_io.Limits(max_upload_mb=cfg.max_upload_mb)
        )
        asset = mesh_io.load_asset(main, mesh_io.Limits(max_upload_mb=cfg.max_upload_mb))
        warnings += asset.warnings
        verts = torch.from_numpy(np.ascontiguousarray(asset.verts, dtype=np.float32))
        faces = torch.from_numpy(np.ascontiguousarray(asset.faces, dtype=np.int64))
        normals = (
            None if asset.normals is None else torch.from_numpy(np.ascontiguousarray(asset.normals, dtype=np.float32))
        )
        return target_from_arrays(verts, faces, normals, cfg.target_points, generator, main.name, warnings)
    if cfg.target not in TARGETS:
        raise ValueError(f"Unknown procedural target {cfg.target!r}: choose {', '.join(TARGETS)}.")
    if cfg.target == "figure":
        points, normals = _figure_points(cfg.target_points, generator)
        points, centre, scale = _normalise(points)
        return PointTarget(points, normals, centre, scale, "figure (procedural point cloud)", warnings)
    verts, faces = _radial_shape(cfg.target)
    return target_from_arrays(
        verts, faces, None, cfg.target_points, generator, f"{cfg.target} (procedural mesh)", warnings
    )


def target_from_arrays(
    verts: torch.Tensor,
    faces: torch.Tensor,
    normals: torch.Tensor | None,
    n: int,
    generator: torch.Generator,
    source: str,
    warnings: list[str] | None = None,
) -> PointTarget:
    """A PointTarget from a mesh (verts (V, 3), faces (F, 3): `n` surface samples) or a point cloud (faces (0, 3):
    the points, randomly subsampled to `n` when there are more), normalised to the unit sphere."""
    warnings = list(warnings or [])
    check_points(verts, "The target" if faces.numel() else "The target point cloud")
    if faces.numel():
        verts_n, centre, scale = _normalise(verts.float())
        points, point_normals = sample_surface(verts_n, faces.long(), n, generator)
        return PointTarget(points.detach(), point_normals.detach(), centre, scale, source, warnings)
    points = verts.float()
    if points.shape[0] > n:
        keep = torch.randperm(points.shape[0], generator=generator)[:n]
        warnings.append(f"The point cloud has {points.shape[0]:,} points; {n:,} were drawn at random for fitting.")
        points = points[keep]
        normals = None if normals is None else normals[keep]
    points, centre, scale = _normalise(points)
    return PointTarget(points, normals, centre, scale, source, warnings)


def corrupt(
    points: torch.Tensor, noise_std: float, outlier_fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """The noisy-scan case: Gaussian noise (std in unit-sphere units) and a fraction of points replaced by outliers
    drawn uniformly in the cube [−1, 1]³."""
    noisy = points + noise_std * torch.randn(points.shape, generator=generator)
    k = int(round(outlier_fraction * points.shape[0]))
    if k > 0:
        idx = torch.randperm(points.shape[0], generator=generator)[:k]
        noisy[idx] = torch.rand(k, 3, generator=generator) * 2 - 1
    return noisy


# ----------------------------------------------------------------------------------------------------------------
# Previews
# ----------------------------------------------------------------------------------------------------------------

_VIEW = (2.5, 15.0, 35.0)  # preview camera: distance, elevation°, azimuth°


def render_mesh(verts: torch.Tensor, faces: torch.Tensor, size: int = 224) -> np.ndarray:
    """A hard Phong render of a grey mesh in the unit-sphere frame from the preview camera; uint8 (S, S, 3)."""
    from pytorch3d.renderer import BlendParams, TexturesVertex
    from pytorch3d.structures import Meshes

    from pipelines.render import rendering

    with torch.no_grad():
        device = verts.device
        rgb = torch.tensor([0.62, 0.7, 0.85], device=device).expand_as(verts)  # (V, 3) light steel blue
        mesh = Meshes([verts.detach()], [faces], textures=TexturesVertex([rgb]))
        cameras = rendering.make_cameras("perspective", *_VIEW, device=device)
        light_at = cameras.get_camera_center()[0] * 1.5 + torch.tensor([0.0, 2.0, 0.0], device=device)
        lights = rendering.make_lights("point", light_at, ambient=(0.35,) * 3, diffuse=(0.7,) * 3, device=device)
        materials = rendering.make_materials(specular=(0.2,) * 3, shininess=64.0, device=device)
        blend = BlendParams(background_color=(1.0, 1.0, 1.0))
        shader = rendering.make_shader(
            "hard-phong", cameras=cameras, lights=lights, materials=materials, blend_params=blend, device=device
        )
        raster = rendering.make_raster_settings(size, device=device)[0]
        renderer = rendering.make_renderer(cameras, raster, shader)
        image = renderer(mesh)[0, ..., :3]
    return to_uint8(image)


def render_points(points: torch.Tensor, size: int = 224, max_points: int = 8000) -> np.ndarray:
    """Target points splatted from the preview camera, shaded by depth (near = dark); uint8 (S, S, 3)."""
    from pipelines.render import rendering

    with torch.no_grad():
        pts = points.detach().float().cpu()[:max_points]
        cameras = rendering.make_cameras("perspective", *_VIEW)
        screen = cameras.transform_points_screen(pts[None], image_size=((size, size),))[0]  # (P, 3): x, y px, depth
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    x, y, z = screen[:, 0].numpy(), screen[:, 1].numpy(), screen[:, 2].numpy()
    order = np.argsort(-z)  # far first, near drawn last
    zn = (z - z.min()) / max(float(z.max() - z.min()), 1e-9)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = np.round(x[order]).astype(int) + dx, np.round(y[order]).astype(int) + dy
            ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            shade = (40 + 150 * zn[order][ok])[:, None]
            image[yi[ok], xi[ok]] = np.concatenate([shade * 0.6, shade * 0.8, np.full_like(shade, 220)], 1).astype(
                np.uint8
            )
    return image


def _label(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    ImageDraw.Draw(img).text((6, 4), text, fill=(30, 30, 30))
    return np.asarray(img)


# ----------------------------------------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------------------------------------


def edge_length_cv(verts: torch.Tensor, edges: torch.Tensor) -> float:
    """Spread of edge lengths: standard deviation over mean (0 for a perfectly even mesh)."""
    lengths = (verts[edges[:, 0]] - verts[edges[:, 1]]).norm(dim=1)
    return float(lengths.std() / lengths.mean().clamp(min=1e-12))


@dataclass
class FitResult:
    name: str
    verts: torch.Tensor  # (V, 3) unit-sphere frame, detached
    faces: torch.Tensor  # (F, 3)
    history: dict[str, list[float]]
    metrics: dict[str, float]


def _fit(
    cfg: Config,
    name: str,
    target: PointTarget,
    loss_points: torch.Tensor,
    device: torch.device,
    step_offset: int,
    total: int,
    results: list[FitResult],
) -> Iterator[Event]:
    """One fit of an ico-sphere to `loss_points` (device) with cfg's weights; appends a FitResult to `results`."""
    from pytorch3d.loss import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
    from pytorch3d.utils import ico_sphere

    from pipelines.train import metrics as point_metrics

    generator = torch.Generator().manual_seed(cfg.seed + 1)
    src = ico_sphere(cfg.ico_level, device=device)
    faces = src.faces_packed()
    deform = torch.zeros(src.verts_packed().shape, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([deform], lr=cfg.lr, momentum=cfg.momentum)
    weights = {"chamfer": cfg.w_chamfer, "edge": cfg.w_edge, "normal": cfg.w_normal, "laplacian": cfg.w_laplacian}
    gt = target.points.to(device)
    gt_normals = None if target.normals is None else target.normals.to(device)
    eval_gen = torch.Generator().manual_seed(cfg.seed + 2)

    def evaluate(verts: torch.Tensor) -> dict[str, float]:
        pts, nrm = sample_surface(verts.detach(), faces, cfg.eval_points, eval_gen)
        return point_metrics.compare_point_sets(pts, gt, nrm, gt_normals, taus=(cfg.f1_tau,))

    start = evaluate(src.verts_packed())
    history: dict[str, list[float]] = {k: [] for k in (*weights, "total")}
    prefix = "" if cfg.experiment == "single" else f"{name} "
    last_preview = -math.inf
    target_image = None
    for i in range(cfg.steps):
        mesh = src.offset_verts(deform)
        samples, _ = sample_surface(mesh.verts_packed(), faces, cfg.sample_points, generator)
        terms = {
            # PyTorch3D's convention; the k-d tree search makes it several times faster than its CPU knn_points
            "chamfer": point_metrics.chamfer_distance(loss_points, samples)[0],
            "edge": mesh_edge_loss(mesh),
            "normal": mesh_normal_consistency(mesh),
            "laplacian": mesh_laplacian_smoothing(mesh, method=cfg.laplacian),
        }
        loss = sum(weights[k] * v for k, v in terms.items())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(loss.detach())}
        if not math.isfinite(values["total"]):
            raise ValueError("The loss became NaN or infinite: lower the learning rate or the weights.")
        for k, v in values.items():
            history[k].append(v)
        shown = values if cfg.experiment == "single" else {"chamfer": values["chamfer"], "total": values["total"]}
        step = step_offset + i + 1
        yield Progress(step, total, {prefix + k: v for k, v in shown.items()}, f"{prefix}step {i + 1}/{cfg.steps}")
        now = time.perf_counter()
        if now - last_preview >= cfg.preview_every_s or i == cfg.steps - 1:
            last_preview = now
            if target_image is None:
                target_image = _label(render_points(target.points), "target")
            verts_now = (src.verts_packed() + deform).detach()
            picture = np.concatenate([target_image, _label(render_mesh(verts_now, faces), f"{prefix}step {i + 1}")], 1)
            yield Preview(step, image=picture, caption=f"{prefix}step {i + 1}: chamfer {values['chamfer']:.4g}")
    verts = (src.verts_packed() + deform).detach()
    end = evaluate(verts)
    result_metrics = {
        "start_chamfer": start["chamfer"],
        **end,
        "chamfer_ratio": end["chamfer"] / max(start["chamfer"], 1e-12),
        "edge_length_cv": edge_length_cv(verts, src.edges_packed()),
        "final_loss": history["total"][-1],
    }
    results.append(FitResult(name, verts, faces, history, result_metrics))


def _write_live_mesh(out_dir: Path, verts: torch.Tensor, faces: torch.Tensor, target: PointTarget, step: int) -> Path:
    """The fitted mesh as a GLB for the 3D viewer when the exports have none (older live files are removed)."""
    live = out_dir / "live"
    live.mkdir(parents=True, exist_ok=True)
    for old in live.glob("*.glb"):
        old.unlink(missing_ok=True)
    return export_mesh(verts, faces, target, live / f"mesh_{step:05d}", ("glb",))["glb"]


def export_mesh(
    verts: torch.Tensor, faces: torch.Tensor, target: PointTarget, stem: Path, formats: tuple[str, ...]
) -> dict[str, Path]:
    """The mesh mapped back to the target's original frame, written with trimesh as OBJ/PLY/GLB."""
    import trimesh

    original = (verts.detach().cpu() * target.scale + target.centre.cpu()).numpy()
    mesh = trimesh.Trimesh(original, faces.detach().cpu().numpy(), process=False)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile([190, 190, 200, 255], (len(original), 1)))
    files = {}
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        mesh.export(path)
        files[fmt] = path
    return files


# ----------------------------------------------------------------------------------------------------------------
# The pipeline
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    target: str = "figure"
    """Procedural target when no file is given: figure (a standing figure's point cloud), blob, cube, peanut, spiky."""
    target_files: tuple[str, ...] = ()
    """An uploaded target: a point cloud (PLY) or a mesh (points are sampled on it). Overrides `target`."""
    target_points: int = 5000
    """Target points: samples on a mesh target, or a random subset of a larger point cloud."""
    noise_std: float = 0.0
    """Gaussian noise added to the target points, in unit-sphere units (the noisy-scan case)."""
    outlier_fraction: float = 0.0
    """Share of target points replaced by outliers drawn uniformly in the cube [−1, 1]³."""
    ico_level: int = 4
    """Subdivision level of the source ico-sphere (4: 2,562 vertices, 5,120 faces)."""
    steps: int = 2000
    """Optimisation steps."""
    lr: float = 1.0
    """SGD learning rate on the per-vertex offsets."""
    momentum: float = 0.9
    """SGD momentum."""
    w_chamfer: float = 1.0
    """Weight of the chamfer distance between target points and points sampled on the mesh."""
    w_edge: float = 1.0
    """Weight of the edge-length loss (mean squared edge length: keeps edges short and even)."""
    w_normal: float = 0.01
    """Weight of the normal-consistency loss (1 − cos between the normals of neighbouring faces)."""
    w_laplacian: float = 0.1
    """Weight of the Laplacian smoothing loss (each vertex near the average of its neighbours)."""
    laplacian: str = "uniform"
    """Laplacian weights: uniform, cot (cotangent) or cotcurv (cotangent, curvature-normalised). cotcurv's values are
    far larger (divided by vertex areas): with w_laplacian 0.1 it crumples the mesh; about 0.001 works."""
    sample_points: int = 5000
    """Points sampled on the mesh at every step for the chamfer loss."""
    experiment: str = "single"
    """single: one fit with these weights; book: the book's three runs (no regulariser, edge only, all losses)."""
    f1_tau: float = 0.05
    """Distance threshold τ of F1@τ, in unit-sphere units (the target is scaled to radius 1)."""
    eval_points: int = 10000
    """Points sampled on the final mesh to measure chamfer, normal consistency and F1 against the clean target."""
    exports: tuple[str, ...] = ("obj", "ply", "glb")
    """Formats of the fitted mesh to write (in the target's original frame): obj, ply, glb."""
    preview_every_s: float = 1.0
    """Seconds between preview renders."""
    max_upload_mb: float = 200.0
    """Largest upload accepted."""
    device: str = "auto"
    """auto, cpu or cuda[:N]."""
    seed: int = 0
    """Seed of point sampling, noise and outliers."""
    out_dir: Path | None = None
    """Where meshes and pictures go (the app and CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls(ico_level=3, steps=300, sample_points=2000, target_points=3000, lr=1.0)

    @classmethod
    def tiny(cls) -> Config:
        return cls(
            ico_level=2, steps=30, sample_points=800, target_points=1000, eval_points=2000, exports=("obj", "glb")
        )


def validate(cfg: Config) -> None:
    if cfg.laplacian not in LAPLACIANS:
        raise ValueError(f"Unknown Laplacian {cfg.laplacian!r}: choose uniform, cot or cotcurv.")
    if cfg.experiment not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {cfg.experiment!r}: choose single or book.")
    if not 0 <= cfg.ico_level <= 6:
        raise ValueError("The ico-sphere level must be between 0 and 6.")
    if cfg.steps < 1 or cfg.sample_points < 10 or cfg.target_points < MIN_POINTS or cfg.eval_points < 10:
        raise ValueError("Steps must be at least 1 and point counts at least 10.")
    if not (cfg.lr > 0 and 0 <= cfg.momentum < 1):
        raise ValueError("The learning rate must be positive and the momentum in [0, 1).")
    if min(cfg.w_chamfer, cfg.w_edge, cfg.w_normal, cfg.w_laplacian) < 0:
        raise ValueError("Loss weights must not be negative.")
    if cfg.noise_std < 0 or not 0 <= cfg.outlier_fraction < 1:
        raise ValueError("Noise must not be negative and the outlier share must be in [0, 1).")
    if cfg.f1_tau <= 0:
        raise ValueError("F1's threshold τ must be positive.")
    unknown = sorted(set(cfg.exports) - set(EXPORTS))
    if unknown:
        raise ValueError(f"Unknown export format {unknown[0]!r}: choose obj, ply or glb.")


def run(cfg: Config) -> Iterator[Event]:
    """Load and normalise the target, fit (once, or the book's three experiments), measure and export."""
    validate(cfg)
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = (
        [(cfg.experiment, cfg)]
        if cfg.experiment == "single"
        else [
            (
                name,
                replace(
                    cfg,
                    w_edge=cfg.w_edge * keep_edge,
                    w_normal=cfg.w_normal * keep_rest,
                    w_laplacian=cfg.w_laplacian * keep_rest,
                ),
            )
            for name, keep_edge, keep_rest in BOOK_EXPERIMENTS
        ]
    )
    total = cfg.steps * len(runs)
    yield Progress(0, total, {}, "loading the target")
    device = resolve_device(cfg.device)
    t_start = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    target = load_target(cfg, generator)
    loss_points = corrupt(target.points, cfg.noise_std, cfg.outlier_fraction, generator).to(device)
    yield Progress(0, total, {}, f"target: {target.points.shape[0]} points from {target.source}")
    results: list[FitResult] = []
    for k, (name, run_cfg) in enumerate(runs):
        yield from _fit(run_cfg, name, target, loss_points, device, k * cfg.steps, total, results)
    elapsed = time.perf_counter() - t_start

    files: dict[str, Path] = {}
    metrics: dict[str, float] = {"time_s": elapsed}
    for result in results:
        stem = "fitted" if cfg.experiment == "single" else f"fitted_{result.name}"
        for fmt, path in export_mesh(result.verts, result.faces, target, out_dir / stem, cfg.exports).items():
            files[f"{stem}.{fmt}" if cfg.experiment != "single" else fmt] = path
        prefix = "" if cfg.experiment == "single" else f"{result.name}_"
        metrics.update({prefix + k: v for k, v in result.metrics.items()})
    tiles = [_label(render_points(target.points), "target")]
    tiles += [
        _label(render_mesh(r.verts, r.faces), r.name if cfg.experiment != "single" else "fitted") for r in results
    ]
    from PIL import Image

    side_by_side = np.concatenate(tiles, 1)
    picture = out_dir / ("comparison.png" if cfg.experiment != "single" else "fitted.png")
    Image.fromarray(side_by_side).save(picture)
    files["picture"] = picture
    if "glb" not in cfg.exports:
        live = _write_live_mesh(out_dir, results[-1].verts, results[-1].faces, target, total)
    else:
        live = files["glb" if cfg.experiment == "single" else f"fitted_{results[-1].name}.glb"]
    table = [{"experiment": r.name, **{k: round(v, 5) for k, v in r.metrics.items()}} for r in results]
    info = {
        "target": target.source,
        "warnings": target.warnings,
        "table": table,
        "histories": {r.name: r.history for r in results},
        "picture": side_by_side,
        "mesh": live,
        "meshes": {r.name: files.get("glb" if cfg.experiment == "single" else f"fitted_{r.name}.glb") for r in results},
        "frame": {"centre": [float(v) for v in target.centre], "scale": target.scale},
    }
    yield Preview(total, image=side_by_side, mesh=live, caption="done")
    yield Done(metrics=metrics, files=files, info=info)
