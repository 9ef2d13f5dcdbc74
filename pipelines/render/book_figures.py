"""The book's figures as data: each capability declares `FIGURES` in its pipeline module, and the CLI
(`--figure N`) and the app's "Reproduce the book's figure" section make any of them from the same pipeline run;
and chapter 1's batch of eight pixel-unit cameras, which the camera inspector shows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from pytorch3d.renderer import PerspectiveCameras
from pytorch3d.transforms import euler_angles_to_matrix

from pipelines.render.camera_render import render_with_points
from pipelines.render.camera_spec import CameraSpec
from pipelines.render.frustum import frustum_figure
from pipelines.render.images import image_grid
from pipelines.render.projection import point_table


@dataclass(frozen=True)
class BookFigure:
    """One figure of the book and how to make it: run `pipeline` (a registry key) with `settings` over the chosen
    preset; the picture is the run's file `output` (a key of Done.files), or its last preview image when empty."""

    number: str
    """The figure's number in the book ("5.2"), or the chapter and a name where the book does not number it."""
    title: str
    """A short title for menus."""
    book: str
    """What the book shows and how it was made, in our words, shown beside the result."""
    pipeline: str
    """The registry key of the pipeline that makes it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Config fields set over the preset (the book's experiment; sizes stay the preset's unless listed)."""
    output: str = ""
    """The Done.files key of the picture; empty: the last preview image."""

    def config(self, base: Any) -> Any:
        """`base` (a preset of the pipeline's Config) with the figure's settings."""
        return dataclasses.replace(base, **dict(self.settings))


def figure_index(figures: tuple[BookFigure, ...]) -> dict[str, BookFigure]:
    """Figures by number; refuses duplicates (a declaration error)."""
    index: dict[str, BookFigure] = {}
    for fig in figures:
        if fig.number in index:
            raise ValueError(f"Figure {fig.number} is declared twice.")
        index[fig.number] = fig
    return index


# --- chapter 1: a batch of eight cameras ----------------------------------------------------------------------

BOOK_CAMERAS = 8
BOOK_IMAGE_SIZE = (1024, 512)  # (H, W) pixels, as the book's image_size rows
BOOK_FOCAL_PX = (1200.0, 300.0)
BOOK_PRINCIPAL_PX = (512.0, 256.0)
BOOK_CAMERAS_TEXT = (
    "Chapter 1 defines a mini-batch of 8 PerspectiveCameras in pixel units (in_ndc=False): images 1024 × 512 "
    "(image_size rows), focal lengths (1200, 300) px, principal point (512, 256) px, camera n = -4..3 rotated by the "
    "Euler angles (5n, n, n) degrees about z, y, x and translated by T = (n, 0, 0); it then maps the cube's vertices "
    "from world to view and to screen coordinates with get_world_to_view_transform and "
    "get_full_projection_transform. Here: the eight frusta around a cube of side 2, a render from each camera (the "
    "cube's centre lies in every camera's z = 0 plane, so each sees at most the half in front of it) and the "
    "vertices in every space."
)


def book_camera_rotations() -> tuple[torch.Tensor, torch.Tensor]:
    """The book's eight rotations and translations, R (8, 3, 3) and T (8, 3). scipy's extrinsic Euler 'zyx' of
    (5n, n, n) degrees is Rx(n) @ Ry(n) @ Rz(5n), which is PyTorch3D's `euler_angles_to_matrix` of (n, n, 5n) in
    "XYZ" order; the matrix is used as PyTorch3D's R, as the book does."""
    n = torch.arange(-4, 4, dtype=torch.float64)
    angles = torch.deg2rad(torch.stack([n, n, 5 * n], -1))
    return euler_angles_to_matrix(angles, "XYZ"), torch.stack([n, torch.zeros_like(n), torch.zeros_like(n)], -1)


def book_cameras(device: torch.device | str = "cpu") -> PerspectiveCameras:
    """The book's batch of eight `PerspectiveCameras` with pixel intrinsics."""
    R, T = book_camera_rotations()
    k = BOOK_CAMERAS
    return PerspectiveCameras(
        focal_length=torch.tensor([BOOK_FOCAL_PX] * k),
        principal_point=torch.tensor([BOOK_PRINCIPAL_PX] * k),
        in_ndc=False,
        image_size=torch.tensor([BOOK_IMAGE_SIZE] * k),
        R=R.float(),
        T=T.float(),
        device=device,
    )


def book_camera_specs() -> list[CameraSpec]:
    """The same eight cameras as the inspector's `CameraSpec`s (one each, for its frustum, render and table)."""
    R, T = book_camera_rotations()
    return [
        CameraSpec(
            kind="perspective",
            R=tuple(map(tuple, R[i].tolist())),
            T=tuple(T[i].tolist()),
            fx=BOOK_FOCAL_PX[0],
            fy=BOOK_FOCAL_PX[1],
            px=BOOK_PRINCIPAL_PX[0],
            py=BOOK_PRINCIPAL_PX[1],
            in_ndc=False,
            image_size=BOOK_IMAGE_SIZE,
        )
        for i in range(BOOK_CAMERAS)
    ]


def book_cube() -> tuple[np.ndarray, np.ndarray]:
    """A cube of side 2 centred at the origin (the book's cube.obj plays this role): verts (8, 3), faces (12, 3)."""
    verts = np.array([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))])
    return verts, faces


def book_cameras_figure() -> tuple[go.Figure, np.ndarray, list[dict]]:
    """Chapter 1's cameras: one 3D scene with the cube and all eight frusta, the eight renders with the cube's
    vertices marked (a 2 x 4 sheet, each render halved), and the vertices' rows in world, view, NDC and screen
    coordinates per camera."""
    verts, faces = book_cube()
    specs = book_camera_specs()
    scene = frustum_figure(specs[0], verts, verts, faces)
    for i, spec in enumerate(specs[1:], 1):
        for trace in frustum_figure(spec, None, None, None).data:
            if trace.name in ("frustum", "camera centre"):
                scene.add_trace(trace.update(name=f"{trace.name} {i}", showlegend=False))
    scene.update_layout(title="The book's batch of 8 PerspectiveCameras (pixel units) around the cube")
    renders = [torch.from_numpy(render_with_points(spec, (verts, faces), verts)[::2, ::2].copy()) for spec in specs]
    sheet = image_grid(renders, 4, pad=6, fill=128).numpy()
    table = [{"camera": i, **row} for i, spec in enumerate(specs) for row in point_table(spec, verts)]
    return scene, sheet, table
