"""The box prior: how many objects a scene holds, and each one's scale, translation and yaw (rotation about +z).

One sampler serves the procedural scenes (the truth) and the generator (its prior), so the generator's prior is
the data's distribution, as GIRAFFE's hand-set priors are for its data sets. Values in [0, 1] map into the ranges
as in the official bounding-box generator: scale = min + val * (max - min), the same for translation, and
yaw = 2 pi (r0 + val * (r1 - r0)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BoxPrior:
    """Ranges of the object boxes (world units, z up). A box maps world points p to the object's canonical cube
    [-1, 1]^3 by R (p - t) / s."""

    n_boxes: int = 1
    """Object slots (the most objects a scene holds)."""
    min_objects: int = 1
    """The fewest objects present; each scene draws its count uniformly in [min_objects, n_boxes]."""
    scale_min: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Smallest half-extents of a box."""
    scale_max: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Largest half-extents of a box."""
    fix_scale_ratio: bool = True
    """One random value for all three axes (the official default)."""
    translation_min: tuple[float, float, float] = (-0.75, -0.75, 0.0)
    """Smallest box centre."""
    translation_max: tuple[float, float, float] = (0.75, 0.75, 0.0)
    """Largest box centre."""
    rotation_range: tuple[float, float] = (0.0, 1.0)
    """Yaw range as fractions of a full turn."""
    on_plane: bool = False
    """Studio option: the box rests on the ground plane z = plane_z (its centre z = plane_z + scale z)."""
    plane_z: float = 0.0
    """Height of the ground plane."""
    no_overlap: bool = False
    """Redraw translations until the boxes' footprints (padded by `padding`) do not overlap."""
    padding: float = 0.05
    """Gap kept between boxes when `no_overlap`."""


@dataclass
class Boxes:
    """Sampled boxes: scale (B, K, 3), translation (B, K, 3), yaw (B, K) in radians, present (B, K) bool."""

    scale: torch.Tensor
    translation: torch.Tensor
    yaw: torch.Tensor
    present: torch.Tensor

    def to(self, device: torch.device | str) -> Boxes:
        return Boxes(*(t.to(device) for t in (self.scale, self.translation, self.yaw, self.present)))

    def rotation(self) -> torch.Tensor:
        """World-to-box rotations (B, K, 3, 3): R (p - t) turns the world by -yaw about +z into the box frame."""
        return yaw_matrix(-self.yaw)

    def index(self, idx: slice | torch.Tensor) -> Boxes:
        return Boxes(self.scale[idx], self.translation[idx], self.yaw[idx], self.present[idx])

    def clone(self) -> Boxes:
        return Boxes(*(t.clone() for t in (self.scale, self.translation, self.yaw, self.present)))


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    """Rotations (.., 3, 3) by `yaw` radians about +z."""
    c, s = yaw.cos(), yaw.sin()
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    rows = [torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1), torch.stack([zero, zero, one], -1)]
    return torch.stack(rows, dim=-2)


def from_values(prior: BoxPrior, scale_val: torch.Tensor, trans_val: torch.Tensor, rot_val: torch.Tensor) -> Boxes:
    """Boxes from values in [0, 1]: scale_val (B, K, 1 or 3), trans_val (B, K, 3), rot_val (B, K); all present."""
    lo, hi = torch.tensor(prior.scale_min), torch.tensor(prior.scale_max)
    if prior.fix_scale_ratio:
        scale_val = scale_val[..., :1]
    scale = lo + scale_val * (hi - lo)  # (B, K, 3)
    t_lo, t_hi = torch.tensor(prior.translation_min), torch.tensor(prior.translation_max)
    trans = t_lo + trans_val * (t_hi - t_lo)
    if prior.on_plane:
        trans = torch.cat([trans[..., :2], prior.plane_z + scale[..., 2:]], dim=-1)
    r0, r1 = prior.rotation_range
    yaw = 2.0 * math.pi * (r0 + rot_val * (r1 - r0))
    present = torch.ones(rot_val.shape, dtype=torch.bool)
    return Boxes(scale.float(), trans.float(), yaw.float(), present)


def _overlapping(scale: torch.Tensor, trans: torch.Tensor, present: torch.Tensor, padding: float) -> torch.Tensor:
    """(B,) True where two present boxes' circumscribed footprint circles (plus padding) intersect."""
    radius = scale[..., :2].norm(dim=-1)  # (B, K)
    gap = (trans[:, :, None, :2] - trans[:, None, :, :2]).norm(dim=-1)  # (B, K, K)
    reach = radius[:, :, None] + radius[:, None, :] + padding
    both = present[:, :, None] & present[:, None, :]
    eye = torch.eye(scale.shape[1], dtype=torch.bool)
    return ((gap < reach) & both & ~eye).flatten(1).any(dim=1)


def sample(prior: BoxPrior, batch: int, gen: torch.Generator, max_tries: int = 200) -> Boxes:
    """`batch` scenes' boxes drawn on the CPU from `gen`; absent slots keep their draws but are marked absent."""
    k = prior.n_boxes
    boxes = from_values(prior, torch.rand(batch, k, 3, generator=gen), torch.rand(batch, k, 3, generator=gen),
                        torch.rand(batch, k, generator=gen))  # fmt: skip
    counts = torch.randint(prior.min_objects, k + 1, (batch,), generator=gen)
    order = torch.rand(batch, k, generator=gen).argsort(dim=1)  # which slots hold the objects
    boxes.present = order < counts[:, None]
    if prior.no_overlap and k > 1:
        for _ in range(max_tries):
            bad = _overlapping(boxes.scale, boxes.translation, boxes.present, prior.padding)
            if not bool(bad.any()):
                break
            redo = from_values(prior, boxes.scale.new_zeros(batch, k, 3), torch.rand(batch, k, 3, generator=gen),
                               torch.zeros(batch, k))  # fmt: skip
            xy = redo.translation[..., :2]
            boxes.translation[bad, :, :2] = xy[bad]
    return boxes
