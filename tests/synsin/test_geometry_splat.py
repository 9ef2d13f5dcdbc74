"""SynSin's geometry and splatting: the point rasteriser against a slow reference, gradients reaching the points,
the lifted cloud re-projecting onto its pixels, and a rendered pair agreeing with its relative pose."""

from __future__ import annotations

import math

import torch

from pipelines.synsin import geometry, rooms
from pipelines.synsin.splat import SplatSettings, reference_splat, splat


def _cloud(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pts = torch.rand(2, n, 3, generator=gen) * 2 - 1
    pts[..., 2] = torch.rand(2, n, generator=gen) * 2 + 0.5
    return pts, torch.rand(2, 5, n, generator=gen)


def test_point_splat_matches_the_slow_reference(device):
    pts, feats = _cloud()
    settings = SplatSettings(radius_px=2.0, points_per_pixel=6, tau=1.0)
    fast, coverage = splat(pts.to(device), feats.to(device), 10, settings)
    slow = reference_splat(pts, feats, 10, settings)
    assert torch.allclose(fast.cpu(), slow, atol=1e-5)
    assert coverage.min() >= 0 and coverage.max() <= 1


def test_splat_gradients_reach_points_and_features():
    pts, feats = _cloud(40, seed=1)
    pts.requires_grad_(True)
    feats.requires_grad_(True)
    out, _ = splat(pts, feats, 8, SplatSettings(2.0, 4, 1.0))
    out.square().sum().backward()
    assert pts.grad is not None and pts.grad[..., :2].abs().sum() > 0
    assert feats.grad is not None and feats.grad.abs().sum() > 0


def test_lifted_cloud_reprojects_onto_its_pixels():
    size, tan_half = 8, math.tan(math.radians(30))
    depth = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(2)) * 3 + 1
    ndc = geometry.project(geometry.lift(depth, tan_half), tan_half)  # identity pose
    assert torch.allclose(ndc[..., :2], geometry.pixel_ndc(size)[None].expand(2, -1, -1), atol=1e-5)
    assert torch.allclose(ndc[..., 2], depth.reshape(2, -1))
    # The identity pose splats every pixel's colour back onto itself.
    colours = torch.rand(2, 3, size * size, generator=torch.Generator().manual_seed(3))
    out, cov = splat(ndc, colours, size, SplatSettings(0.5, 2, 1.0))
    assert torch.allclose(out / cov.clamp(min=1e-6), colours.reshape(2, 3, size, size), atol=1e-4)


def test_relative_pose_signs():
    r, t = geometry.relative_transform(geometry.RelPose(yaw_deg=10.0))
    ahead_left = torch.tensor([[math.sin(math.radians(10)), 0.0, math.cos(math.radians(10))]])
    assert torch.allclose(ahead_left @ r + t, torch.tensor([[0.0, 0.0, 1.0]]), atol=1e-6)  # +yaw turns left
    r, t = geometry.relative_transform(geometry.RelPose(forward=0.5))
    assert torch.allclose(torch.tensor([[0.0, 0.0, 2.0]]) @ r + t, torch.tensor([[0.0, 0.0, 1.5]]))


def test_extreme_pose_is_clamped_and_said():
    pose, notes = geometry.RelPose(yaw_deg=90, forward=-5, right=float("nan")).clamped(geometry.PoseLimits())
    assert pose.yaw_deg == 20.0 and pose.forward == -0.6 and pose.right == 0.0
    assert len(notes) == 3 and "clamped" in notes[0]


def test_rendered_pair_agrees_with_its_relative_pose():
    """Splatting the source with the true depth lands on the target far better than a wrong (inverted) rotation."""
    b = rooms.room_pairs(5, 4, 32, 60.0, geometry.PoseLimits())
    tan_half = math.tan(math.radians(30))

    def err(r: torch.Tensor) -> float:
        pts = geometry.project(geometry.transform(geometry.lift(b.src_depth, tan_half), r, b.t_rel), tan_half)
        out, cov = splat(pts, b.src.flatten(2), 32, SplatSettings(1.5, 8, 1.0))
        m = (cov > 0.5).float()
        return float(((out / cov.clamp(min=1e-4) - b.tgt).abs() * m).sum() / (3 * m.sum()))

    assert err(b.r_rel) < 0.03
    assert err(b.r_rel.transpose(1, 2)) > 2 * err(b.r_rel)


def test_rooms_are_seeded_and_textured():
    a = rooms.room_pairs(11, 2, 16, 60.0, geometry.PoseLimits())
    b = rooms.room_pairs(11, 2, 16, 60.0, geometry.PoseLimits())
    c = rooms.room_pairs(12, 2, 16, 60.0, geometry.PoseLimits())
    assert torch.equal(a.src, b.src) and not torch.equal(a.src, c.src)
    assert a.src.std() > 0.05 and (a.src_depth > 0).all()
