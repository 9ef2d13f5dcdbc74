"""The multi-view data set's types: `DataConfig` (the settings every multi-view pipeline shares, with their checks),
`MultiviewData` (views with their cameras), the held-out split and the views' azimuths.

Conventions are PyTorch3D's (+X left, +Y up, +Z into the screen). Images are float in [0, 1], channels last,
on a black background (as in the book); silhouettes are 0/1 masks of the same size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pytorch3d.renderer import FoVPerspectiveCameras

OBJECTS = ("cow", "blob", "textured-cube")
"""Built-in objects: `cow`, the book's subject (a UV-textured stand-in made in code); `blob`, a colourful bumpy sphere
made in code; `textured-cube`, the bundled UV-textured asset."""

LIGHTING = ("book", "diffuse")
MAX_VIEWS = 400
MAX_IMAGE_SIZE = 512
MIN_IMAGE_SIZE = 8
FOV_DEG = 60.0  # FoVPerspectiveCameras' default, as in the book


@dataclass(frozen=True)
class DataConfig:
    """The data-set settings every multi-view pipeline shares (Volume and NeRF inherit them)."""

    object: str = "cow"
    """Object to reconstruct when no file is uploaded: cow (the book's subject, a UV-textured stand-in made in code), blob (a colourful bumpy sphere) or textured-cube (the bundled UV-textured asset)."""
    files: tuple[str, ...] = ()
    """An uploaded mesh instead (OBJ with its MTL and texture, PLY, GLB, STL, OFF, or a zip); it is centred and scaled into the unit sphere."""
    n_views: int = 40
    """Views rendered around the object at a fixed elevation."""
    image_size: int = 128
    """Side of the square views in pixels."""
    elevation: float = 0.0
    """Camera elevation above the object's equator, degrees (the same for every view; the book's 0)."""
    distance: float = 2.7
    """Camera distance from the object's centre (the object fits in the unit sphere)."""
    azimuth_range: float = 180.0
    """Views span azimuths -range..+range degrees; 180 is a full circle without a repeated view."""
    holdout_every: int = 0
    """0 (the book): all n_views views train and `heldout_views` extra views are held out; n >= 2: every n-th of the
    n_views views is held out instead (never trained on; 8 holds out 5 of 40)."""
    heldout_views: int = 5
    """With holdout_every 0: extra views at azimuths halfway between training views, held out for PSNR."""
    lighting: str = "book"
    """book: generate_cow_renders' point light at (0, 0, -3) with PyTorch3D's default ambient, diffuse and specular
    (view-dependent highlights); diffuse: a directional light without specular (what a view-independent grid fits)."""
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
    if cfg.holdout_every == 0:
        if not 1 <= cfg.heldout_views <= MAX_VIEWS - cfg.n_views:
            raise ValueError(f"heldout_views must be 1 to {MAX_VIEWS - cfg.n_views} when holdout_every is 0.")
    elif cfg.holdout_every < 2:
        raise ValueError("holdout_every must be 0 or at least 2 (every view held out would leave nothing to train on).")
    elif len(split_indices(cfg.n_views, cfg.holdout_every)[1]) == 0:
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
    if cfg.lighting not in LIGHTING:
        raise ValueError(f"Unknown lighting {cfg.lighting!r}: choose {' or '.join(LIGHTING)}.")
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


def view_plan(cfg: DataConfig) -> tuple[torch.Tensor, list[int], list[int]]:
    """Every view's azimuth (N,) in degrees with the train and held-out indices. holdout_every 0: the n_views views
    of `view_azimuths` all train, then `heldout_views` extra views halfway between evenly spread neighbours."""
    azimuth = view_azimuths(cfg.n_views, cfg.azimuth_range)
    if cfg.holdout_every:
        return (azimuth, *split_indices(cfg.n_views, cfg.holdout_every))
    spacing = float(azimuth[1] - azimuth[0]) if cfg.n_views > 1 else 0.0
    picks = torch.div(torch.arange(cfg.heldout_views) * cfg.n_views, cfg.heldout_views, rounding_mode="floor")
    extra = azimuth[picks.clamp(max=cfg.n_views - 2 if cfg.azimuth_range < 180.0 else cfg.n_views - 1)] + spacing / 2
    train = list(range(cfg.n_views))
    return torch.cat([azimuth, extra]), train, list(range(cfg.n_views, cfg.n_views + cfg.heldout_views))
