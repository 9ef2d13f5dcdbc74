"""NeRF benchmark: training steps/s and rays/s of the book's MLP (at the book's settings and at small ones) and of
the grid field (quick preset), render time of a 128 px view, peak memory, and the time the quick preset takes to
reach its held-out PSNR bar; the book's MLP gets the same 90 s budget on the quick data for comparison."""

from __future__ import annotations

import os

from bench.volume import bar_line, fmt, header, spawn, training_table

PSNR_BAR = 25.0
BUDGET_S = 90.0

# The book's MLP made as small as the CPU budget needs: 64 px views, bounded sampling, fewer octaves, narrower.
SMALL_MLP = {
    "field": "mlp",
    "n_harmonics": 8,
    "omega0": 1.0,
    "hidden": 128,
    "density_bias": -1.5,
    "lr": 0.003,
    "steps": 400,
    "eval_every": 25,
    "eval_views": 2,
}


def main() -> None:
    header("NeRF: emission-absorption rendering of a radiance field, Monte Carlo rays, CPU")
    book = {"steps": 3, "eval_every": 1000, "orbit_frames": 0, "holdout_every": 40, "mesh_resolution": 16}
    probe = {"eval_every": 1000, "orbit_frames": 0, "mesh_resolution": 16}
    rows = [
        ("book MLP (full: 60 oct, 2x256, 6x750x128)", spawn("case", "nerf", "full", book)),
        (
            "small MLP (8 oct, 2x128, 6x512, bounded 64)",
            spawn("case", "nerf", "quick", {**SMALL_MLP, **probe, "steps": 12}),
        ),  # fmt: skip
        ("grid field (quick: 16/32/64^3, 6x512, b.64)", spawn("case", "nerf", "quick", {**probe, "steps": 12})),
    ]
    training_table(rows)
    print()
    for name, preset, over in (
        ("book MLP, 128 pts, whole rays", "full", {}),
        ("small MLP, 64 pts, bounded", "quick", SMALL_MLP),
        ("grid field, 64 pts, bounded", "quick", {}),
    ):
        r = spawn("render_time", "nerf", preset, over)
        print(f"render one 128 px view, {name}: {fmt(r.get('render_s'), '.2f')} s", flush=True)
    print()
    quick = spawn("case", "nerf", "quick", {}, PSNR_BAR)
    bar_line("quick preset as shipped (grid field; 2 held-out views at intermediate evaluations)", quick)
    fine = spawn("case", "nerf", "quick", {"eval_every": 5, "eval_views": 0}, PSNR_BAR)
    bar_line("quick preset evaluated on all held-out views every 5 steps (time to bar)", fine)
    mlp = spawn("case", "nerf", "quick", SMALL_MLP, PSNR_BAR, BUDGET_S)
    bar_line(f"small book-style MLP on the quick data, stopped at {BUDGET_S:.0f} s", mlp)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
