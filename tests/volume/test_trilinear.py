"""The precomputed sparse trilinear map renders and backpropagates exactly as `render_grid` (the VolumeRenderer's
result) on whole-view rays, across chunk boundaries that split views."""

from __future__ import annotations

import torch

from pipelines.train import generators, multiview, raymarching
from pipelines.volume import pipeline as volume
from pipelines.volume import trilinear
from pipelines.volume.sampler import render_grid


def test_sparse_map_equals_the_grid_sampler_with_gradients():
    cfg = volume.Config(n_views=4, image_size=12, grid_size=10, n_pts_per_ray=40, extent=2.4)
    data = multiview.build(cfg, torch.device("cpu"))
    rays = raymarching.PixelRays(data, 0.0)
    model = volume.VoxelGrid(cfg.grid_size, cfg.extent, 0.0, torch.device("cpu"))
    with torch.no_grad():
        model.log_densities.normal_(generator=torch.Generator().manual_seed(1))
        model.log_colors.normal_(generator=torch.Generator().manual_seed(2))
    volumes = model.volumes(model.densities().detach(), model.colors().detach())
    views = data.train_idx[:2].tolist()
    weights = generators.finish(
        trilinear.build_sampler(
            rays, views, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth, volumes, cfg.grid_size, 2**30
        )
    )
    assert weights is not None
    # Over the memory budget the builder gives up (the fit then samples the grid directly); the budget is never
    # more than the cap, nor more than half the memory free.
    over = trilinear.build_sampler(rays, views, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth, volumes, 10, 1)
    assert generators.finish(over) is None
    assert 0 < volume.weights_budget() <= volume.MAX_WEIGHTS_BYTES
    grid = torch.cat([model.densities(), model.colors()]).detach()[None]
    view, pix = rays.sample(torch.tensor(views), 0, torch.Generator())
    bundle = rays.bundle(view, pix, cfg.n_pts_per_ray, cfg.min_depth, cfg.max_depth)
    leaf = grid.clone().requires_grad_()
    reference = render_grid(leaf, volumes, bundle)[0]  # (M, 4)
    grad_out = torch.randn(reference.shape, generator=torch.Generator().manual_seed(3))
    reference.backward(grad_out)

    weights.begin(grid)
    spans = [slice(0, 50), slice(50, 200), slice(200, len(view))]  # 144 rays a view: the middle span splits two
    outs = []
    for span in spans:
        runs = trilinear.view_runs(view[span], pix[span])
        assert runs is not None
        outs.append(torch.cat([weights.render(v, p0, p1) for v, p0, p1 in runs]))
    out = torch.cat(outs)
    out.backward(grad_out)
    grad = weights.grid_gradient()
    assert torch.allclose(out, reference, atol=1e-5), (out - reference).abs().max()
    assert torch.allclose(grad, leaf.grad, atol=1e-4), (grad - leaf.grad).abs().max()
    assert trilinear.view_runs(torch.tensor([0, 0]), torch.tensor([3, 5])) is None  # not consecutive pixels
