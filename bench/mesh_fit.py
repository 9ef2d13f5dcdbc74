"""Mesh-fitting benchmark on the CPU: steps per second at the book's settings and at the quick preset, and how long the
quick preset takes to cut the chamfer distance to a tenth of its start, with 2 and 1 torch threads."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._common import measure_per_thread_count, print_footer, print_header, print_row


def _steps_per_second(level: int, samples: int, target_points: int, steps: int) -> float:
    """Fitting steps (sample, chamfer + regularisers, backward, SGD) per second on the CPU."""
    import dataclasses

    import torch

    from pipelines.mesh_fit import pipeline as mesh_fit
    from pipelines.mesh_fit.fit import fit
    from pipelines.mesh_fit.targets import load_target

    cfg = dataclasses.replace(
        mesh_fit.Config(),
        ico_level=level,
        sample_points=samples,
        target_points=target_points,
        steps=steps + 1,
        preview_every_s=1e9,
        device="cpu",
    )
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(cfg, out_dir=Path(tmp))
        target = load_target(cfg, generator)
        times: list[float] = []
        results: list = []
        for event in fit(cfg, "bench", target, target.points, torch.device("cpu"), 0, cfg.steps, results):
            if type(event).__name__ == "Progress":
                times.append(time.perf_counter())
    return steps / (times[-1] - times[0])  # the first step is the warm-up


def _quick_run() -> dict:
    import dataclasses

    from pipelines.mesh_fit import pipeline as mesh_fit

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(mesh_fit.Config.quick(), out_dir=Path(tmp), device="cpu")
        t0 = time.perf_counter()
        first, reached, done = None, None, None
        for event in mesh_fit.run(cfg):
            losses = getattr(event, "losses", {})
            if "chamfer" in losses:
                first = losses["chamfer"] if first is None else first
                if reached is None and losses["chamfer"] <= first / 10:
                    reached = time.perf_counter() - t0
            if type(event).__name__ == "Done":
                done = event
        total = time.perf_counter() - t0
    return {"time_to_tenth_s": reached, "total_s": total, **done.metrics}


def measure(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return {
        "threads": threads,
        # the book: level-4 ico-sphere (2,562 vertices), 5,000 samples against 5,000 target points
        "book_steps_per_s": _steps_per_second(4, 5000, 5000, 20),
        # the quick preset: level 3 (642 vertices), 2,000 samples against 3,000 target points
        "quick_steps_per_s": _steps_per_second(3, 2000, 3000, 30),
        "quick": _quick_run(),
    }


def main() -> None:
    results = measure_per_thread_count("mesh_fit")
    print_header("mesh fitting, CPU", results)
    print_row("book (level 4, 5,000 samples): steps/s", results, lambda r: f"{r['book_steps_per_s']:.1f}")
    print_row("quick (level 3, 2,000 samples): steps/s", results, lambda r: f"{r['quick_steps_per_s']:.1f}")
    print_row(
        "quick: time to a tenth of the start chamfer (s)", results, lambda r: f"{r['quick']['time_to_tenth_s']:.1f}"
    )
    print_row("quick: whole run, 300 steps (s)", results, lambda r: f"{r['quick']['total_s']:.1f}")
    print_row(
        "quick: final chamfer / start, F1@0.05",
        results,
        lambda r: f"{r['quick']['chamfer_ratio']:.4f}, {r['quick']['f1@0.05']:.3f}",
    )
    print_footer(results)
