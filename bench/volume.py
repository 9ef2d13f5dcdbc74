"""Volume benchmark: training steps/s and rays/s at the book's settings and the quick preset, render time of a
128 px view, peak memory, and the time the quick preset takes to reach its held-out PSNR bar.

Each case runs in a fresh process (peak RSS includes the imports). `bench/nerf.py` reuses `case`, `spawn` and
`render_time` from here.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PSNR_BAR = 22.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def case(pipeline: str, preset: str, overrides: dict[str, Any], bar: float = 0.0, budget_s: float = 0.0) -> dict:
    """Run one pipeline configuration in this process and time it from its events.

    Steps/s is measured between the Progress events of step 1 and of the last step before an evaluation, so
    data rendering, the first step's warm-up and evaluations are left out. `bar`: the wall time (from the start,
    data included) of the first evaluation at or above it. `budget_s`: stop the run after that many seconds.
    """
    import torch

    from pipelines import get
    from pipelines.core.config import make_preset, override
    from pipelines.core.events import Done, Progress

    module = get(pipeline)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = override(make_preset(module.Config, preset), {**overrides, "out_dir": Path(tmp), "device": "cpu"})
        start = time.perf_counter()
        step_t: dict[int, float] = {}
        evals: list[tuple[int, float, float]] = []
        done = None
        events = module.run(cfg)
        for event in events:
            now = time.perf_counter() - start
            if isinstance(event, Progress):
                if "psnr_heldout" in event.losses:
                    evals.append((event.step, now, event.losses["psnr_heldout"]))
                elif event.losses and event.step not in step_t:
                    step_t[event.step] = now
            elif isinstance(event, Done):
                done = event
            if budget_s and now > budget_s:
                events.close()
                break
        total = time.perf_counter() - start
    eval_steps = {s for s, _, _ in evals}
    timed = sorted(s for s in step_t if s >= 1)
    # Consecutive steps without an evaluation between them.
    spans = [(a, b) for a, b in zip(timed, timed[1:]) if b == a + 1 and b not in eval_steps]
    step_s = sorted(step_t[b] - step_t[a] for a, b in spans)
    per_step = step_s[len(step_s) // 2] if step_s else float("nan")
    reached = next(((s, t, p) for s, t, p in evals if p >= bar), None) if bar else None
    return {
        "pipeline": pipeline,
        "preset": preset,
        "overrides": overrides,
        "step_s_median": per_step,
        "steps_per_s": 1.0 / per_step if step_s else float("nan"),
        "rays_per_step": rays_per_step(cfg),
        "total_s": total,
        "evals": evals,
        "bar": bar,
        "bar_reached": reached,
        "final_psnr": evals[-1][2] if evals else float("nan"),
        "metrics": {} if done is None else done.metrics,
        "peak_rss_mb": _peak_mb(),
        "threads": torch.get_num_threads(),
    }


def rays_per_step(cfg: Any) -> int:
    """Rays rendered in one optimisation step (every pixel of the batch when rays_per_image is 0)."""
    cams = min(cfg.batch_cameras, cfg.n_views)
    return cams * (cfg.rays_per_image if cfg.rays_per_image > 0 else cfg.image_size**2)


def render_time(pipeline: str, preset: str, overrides: dict[str, Any], size: int = 128, repeats: int = 2) -> dict:
    """Seconds to render one `size` px view with the preset's field or grid (untrained; the cost is the same)."""
    import torch

    from pipelines import get
    from pipelines.core.config import make_preset, override
    from pipelines.train import raymarching
    from pipelines.train.generators import finish
    from pipelines.train.multiview_render import view_cameras

    module = get(pipeline)
    cfg = override(make_preset(module.Config, preset), {**overrides, "device": "cpu"})
    device = torch.device("cpu")
    if pipeline == "volume":
        from pytorch3d.renderer import EmissionAbsorptionRaymarcher, VolumeRenderer

        model = module.VoxelGrid(cfg.grid_size, cfg.extent, cfg.init_log_density, device, cfg.bound_radius)
        with torch.no_grad():
            # A ball of density so bounded and whole-ray renders do comparable work.
            vols = model.volumes(model.densities(), model.colors())
            centres = vols.get_coord_grid(world_coordinates=True)[0]
            dens = (centres.norm(dim=-1) < 0.8).float()[None] * 0.5
            vols = model.volumes(dens, model.colors())
        renderer = VolumeRenderer(raysampler=raymarching.GivenRays(), raymarcher=EmissionAbsorptionRaymarcher())

        def fn(bundle):
            out, _ = renderer(cameras=None, volumes=vols, rays=bundle)
            return out[..., :3], out[..., 3]

    else:
        field = module.fields.make_field(cfg.field, module.field_args(cfg))
        fn = module.render_fn_for(field, cfg.bound_radius)
    cams = view_cameras(torch.tensor([30.0]), 15.0, 2.7, device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        finish(
            raymarching.render_cameras(
                fn,
                cams,
                size,
                cfg.n_pts_per_ray,
                cfg.min_depth,
                cfg.max_depth,
                8192,
                raymarching.Ticker(1e9),
                lambda: None,
                cfg.bound_radius,
            )  # fmt: skip
        )
        times.append(time.perf_counter() - t0)
    return {"render_s": min(times), "size": size, "peak_rss_mb": _peak_mb()}


def spawn(fn: str, *args: Any, timeout: float = 1800) -> dict:
    """Run `bench.volume.<fn>(*args)` in a fresh process and return its JSON result (or an error)."""
    code = f"import json, bench.volume as b; print('RESULT ' + json.dumps(b.{fn}(*json.loads({json.dumps(json.dumps(args))}))))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1][len("RESULT ") :])


def fmt(x: Any, spec: str = ".2f") -> str:
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return "-"


def header(title: str) -> None:
    import torch

    print(title)
    print(
        f"CPU: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average at start "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
    )


def training_table(rows: list[tuple[str, dict]]) -> None:
    head = f"{'case':52} {'s/step':>8} {'steps/s':>8} {'rays/step':>9} {'rays/s':>9} {'peak RSS MB':>11}"
    print(head)
    print("-" * len(head))
    for name, r in rows:
        if "error" in r:
            print(f"{name:52} failed: {r['error']}")
            continue
        rays_s = r["rays_per_step"] * r["steps_per_s"]
        print(
            f"{name:52} {fmt(r['step_s_median'], '8.3f')} {fmt(r['steps_per_s'], '8.2f')} {r['rays_per_step']:>9} "
            f"{fmt(rays_s, '9.0f')} {fmt(r['peak_rss_mb'], '11.0f')}",
            flush=True,
        )


def bar_line(name: str, r: dict) -> None:
    if "error" in r:
        print(f"{name}: failed: {r['error']}")
        return
    hit = r["bar_reached"]
    when = f"{hit[1]:.1f} s (step {hit[0]}, {hit[2]:.2f} dB)" if hit else "not reached"
    steps = r["evals"][-1][0] if r["evals"] else 0
    print(
        f"{name}: held-out PSNR {fmt(r['final_psnr'])} dB at step {steps}, whole run {r['total_s']:.1f} s; "
        f"bar {r['bar']:.0f} dB reached at {when}",
        flush=True,
    )


def main() -> None:
    header("Volume: voxel grid + VolumeRenderer (NDCMultinomialRaysampler, emission-absorption), CPU")
    book = {"steps": 4, "eval_every": 1000, "orbit_frames": 0, "holdout_every": 40}
    quick_probe = {"eval_every": 1000, "orbit_frames": 0, "steps": 12}
    rows = [
        ("book (full preset: 128^3, 10x128^2 rays, 150 pts)", spawn("case", "volume", "full", book)),
        ("quick (64^3, 6x512 rays, bounded 64 pts)", spawn("case", "volume", "quick", quick_probe)),
    ]
    training_table(rows)
    print()
    for name, preset, over in (
        ("book (128^3, 150 pts, whole rays)", "full", {}),
        ("quick (64^3, 64 pts, bounded)", "quick", {}),
    ):
        r = spawn("render_time", "volume", preset, over)
        print(f"render one 128 px view, {name}: {fmt(r.get('render_s'), '.2f')} s", flush=True)
    print()
    quick = spawn("case", "volume", "quick", {}, PSNR_BAR)
    bar_line("quick preset as shipped (evaluates every 25 steps)", quick)
    fine = spawn("case", "volume", "quick", {"eval_every": 5}, PSNR_BAR)
    bar_line("quick preset evaluated every 5 steps (time to bar)", fine)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
