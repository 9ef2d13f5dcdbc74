"""SMPL benchmark (CPU): LBS forward passes per second at batch 1 and 64, and SMPLify seconds per fit."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import torch


def forwards_per_second(model, batch: int, seconds: float = 3.0, grad: bool = False) -> float:
    """Bodies posed per second (vertices and joints), timed over about `seconds` after a warm-up."""
    gen = torch.Generator().manual_seed(0)
    betas = torch.randn(batch, model.num_betas, generator=gen)
    pose = 0.3 * torch.randn(batch, 24, 3, generator=gen)
    if grad:
        pose.requires_grad_(True)

    def once() -> None:
        verts, joints = model.forward(betas, pose)
        if grad:
            (verts.sum() + joints.sum()).backward()

    with torch.set_grad_enabled(grad):
        once()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            once()
            n += 1
        elapsed = time.perf_counter() - start
    return n * batch / elapsed


def smplify_seconds(preset: str, seeds: tuple[int, ...]) -> list[dict]:
    from pipelines.core.config import make_preset
    from pipelines.smpl import smplify

    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = dataclasses.replace(make_preset(smplify.Config, preset), seed=seed, device="cpu", out_dir=Path(tmp))
            start = time.perf_counter()
            done = list(smplify.run(cfg))[-1]
            rows.append({"seconds": time.perf_counter() - start, **done.metrics})
    return rows


def main() -> None:
    from pipelines.smpl import body_model

    model = body_model.load().to("cpu")
    threads = torch.get_num_threads()
    print(f"CPU threads: {threads}; body: {model.name}, {model.num_verts} vertices, {model.num_betas} betas")
    print("\n| LBS (vertices + joints) | threads | batch | bodies / s | ms / call |")
    print("|---|---:|---:|---:|---:|")
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)
        for batch in (1, 64):
            for grad in (False, True):
                rate = forwards_per_second(model, batch, grad=grad)
                label = "forward + backward" if grad else "forward (no grad)"
                print(f"| {label} | {n_threads} | {batch} | {rate:,.0f} | {1000 * batch / rate:.1f} |", flush=True)
    torch.set_num_threads(threads)

    print("\n| SMPLify (synthetic, seeded) | preset | seconds / fit | 2D error px | PA-MPJPE mm (init → fit) |")
    print("|---|---|---:|---:|---:|")
    for preset, seeds in (("tiny", (0, 1, 2)), ("quick", (0, 1, 2))):
        rows = smplify_seconds(preset, seeds)
        for r in rows:
            print(
                f"| seed {seeds[rows.index(r)]} | {preset} | {r['seconds']:.1f} | {r['err_2d_px']:.2f} | "
                f"{r['init_pa_mpjpe_mm']:.0f} → {r['pa_mpjpe_mm']:.0f} |",
                flush=True,
            )
        mean = sum(r["seconds"] for r in rows) / len(rows)
        print(f"| mean | {preset} | {mean:.1f} | | |", flush=True)


if __name__ == "__main__":
    main()
