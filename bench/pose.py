"""Pose benchmark on the CPU: steps per second at the book's settings and at the quick preset, and how long the quick
preset takes to land within 5° from a 30° start (plus the quick tracking run), with 2 and 1 torch threads."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._common import measure_per_thread_count, print_footer, print_header, print_row


def _steps_per_second(size: int, k: int, detail: int, backend: str, steps: int) -> float:
    """Silhouette-loss steps (render, loss, backward, Adam) per second on the CPU."""
    import torch

    from pipelines.pose.camera_math import spherical_to_position, turn
    from pipelines.pose.meshes import load_mesh
    from pipelines.pose.scene import Scene, SoftSettings

    device = torch.device("cpu")
    mesh, _ = load_mesh((), Path("."), detail, device)
    scene = Scene(mesh, device)
    s = SoftSettings(size, 1e-4, 1e-4, k, backend)
    truth = spherical_to_position(2.7, 15.0, 50.0)[None]
    with torch.no_grad():
        target = scene.silhouette(truth, s)
    position = turn(truth[0], 30.0, torch.Generator().manual_seed(0))[None].requires_grad_(True)
    optimizer = torch.optim.Adam([position], lr=0.05)

    def step() -> None:
        loss = ((scene.silhouette(position, s) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def _quick_run(name: str) -> dict:
    import dataclasses

    from pipelines.pose import pipeline as pose
    from pipelines.pose import track as pose_track

    module = pose if name == "pose" else pose_track
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(module.Config.quick(), out_dir=Path(tmp), device="cpu", videos=())
        t0 = time.perf_counter()
        first_within = None
        done = None
        for event in module.run(cfg):
            losses = getattr(event, "losses", {})
            if first_within is None and losses.get("error_deg", 99.0) < 5.0:
                first_within = time.perf_counter() - t0
            if type(event).__name__ == "Done":
                done = event
        total = time.perf_counter() - t0
    return {"time_to_5deg_s": first_within, "total_s": total, **done.metrics}


def measure(threads: int) -> dict:
    """Everything, in this process, with `threads` torch threads."""
    import torch

    torch.set_num_threads(threads)
    out = {"threads": threads}
    # the book: 256 px, 100 faces per pixel, sigma 1e-4, the toy cow at detail 2 (8,960 faces; the book's cow has 5,856)
    out["book_pytorch3d_steps_per_s"] = _steps_per_second(256, 100, 2, "pytorch3d", 2)
    out["book_torch_steps_per_s"] = _steps_per_second(256, 100, 2, "torch", 3)
    # the quick preset: detail 1 (2,240 faces), 16 faces per pixel, 64 px then 128 px
    out["quick64_torch_steps_per_s"] = _steps_per_second(64, 16, 1, "torch", 10)
    out["quick128_torch_steps_per_s"] = _steps_per_second(128, 16, 1, "torch", 10)
    out["quick128_pytorch3d_steps_per_s"] = _steps_per_second(128, 16, 1, "pytorch3d", 3)
    out["pose_quick"] = _quick_run("pose")
    out["track_quick"] = _quick_run("pose-track")
    return out


def main() -> None:
    results = measure_per_thread_count("pose")
    rows = [
        ("book 256 px, K=100, PyTorch3D rasteriser (torch fragments on the CPU)", "book_pytorch3d_steps_per_s"),
        ("book 256 px, K=100, torch rasteriser", "book_torch_steps_per_s"),
        ("quick 64 px, K=16, torch rasteriser", "quick64_torch_steps_per_s"),
        ("quick 128 px, K=16, torch rasteriser", "quick128_torch_steps_per_s"),
        ("quick 128 px, K=16, PyTorch3D rasteriser (torch fragments on the CPU)", "quick128_pytorch3d_steps_per_s"),
    ]
    print_header("pose, CPU", results)
    for label, key in rows:
        print_row(f"{label}: steps/s", results, lambda r, key=key: f"{r[key]:.2f}")
    for label, key in (
        ("pose quick: time to within 5° of a 30° start", "time_to_5deg_s"),
        ("pose quick: whole run", "total_s"),
    ):
        print_row(f"{label} (s)", results, lambda r, key=key: f"{r['pose_quick'][key]:.1f}")
    print_row(
        "pose quick: final error (°) / steps",
        results,
        lambda r: f"{r['pose_quick']['error_deg']:.2f} / {r['pose_quick']['steps']:.0f}",
    )
    print_row("tracking quick (24 frames): whole run (s)", results, lambda r: f"{r['track_quick']['total_s']:.1f}")
    print_row("tracking quick: max error (°)", results, lambda r: f"{r['track_quick']['max_error_deg']:.2f}")
    print_footer(results)
