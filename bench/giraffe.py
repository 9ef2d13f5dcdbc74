"""GIRAFFE benchmark: generator images/s at 64 and 128 px with the official networks (and the quick preset's 32 px),
training steps/s of the official 64 px configuration and of the quick preset, on the CPU and on CUDA when present,
then the quick preset's procedural FD (and centroid error) after a fixed wall-time budget, against the untrained
generator's FD measured in the same run."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import torch

import pipelines  # noqa: F401 - sets OMP_WAIT_POLICY before torch does any work
from pipelines.core.ddp import Dist
from pipelines.core.events import Done
from pipelines.giraffe import frechet, scenes, training
from pipelines.giraffe import pipeline as giraffe_train
from pipelines.giraffe.evaluation import render
from pipelines.giraffe.generator import Generator, GeneratorSpec, sample_params

BUDGET_MIN = 2.0
"""Wall-time budget of the quick-preset training whose FD is reported."""


def _spec(preset: str, image_size: int | None = None) -> GeneratorSpec:
    cfg = giraffe_train.Config() if preset == "full" else giraffe_train.Config.quick()
    if image_size is not None:
        cfg = dataclasses.replace(cfg, image_size=image_size)
    return giraffe_train.model_spec(cfg)


def images_per_s(spec: GeneratorSpec, device: torch.device, batch: int, repeats: int = 2) -> float:
    generator = Generator(spec).to(device).eval()
    params = sample_params(spec, batch, torch.Generator().manual_seed(0), device)
    render(generator, params, chunk=batch)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        render(generator, params, chunk=batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return batch * repeats / (time.perf_counter() - start)


def steps_per_s(spec: GeneratorSpec, d_feat: int, device: torch.device, batch: int, repeats: int = 2) -> float:
    state = training.build_state(spec, d_feat, 5e-4, 1e-4, 0, device)
    gen, noise = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    real = torch.rand(batch, 3, spec.image_size, spec.image_size, generator=gen).to(device)
    dist = Dist(device=device)

    def step() -> None:
        params = sample_params(spec, batch, gen, device)
        training.gan_step(state, real, params, noise, n_global=batch, r1_gamma=10.0, ema_beta=0.999, dist=dist)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return repeats / (time.perf_counter() - start)


def speed_table() -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print("| measurement | CPU | GPU |")
    print("|---|---|---|")
    rows = [
        (
            "generator images/s, official networks, 64 px (16² x 64 samples)",
            lambda d: images_per_s(_spec("full"), d, 8),
        ),
        ("generator images/s, official networks, 128 px", lambda d: images_per_s(_spec("full", 128), d, 4)),
        ("generator images/s, quick preset, 32 px (8² x 32 samples)", lambda d: images_per_s(_spec("quick"), d, 32)),
        ("training steps/s, official 64 px config, batch 32", lambda d: steps_per_s(_spec("full"), 512, d, 32, 1)),
        ("training steps/s, quick preset, batch 16", lambda d: steps_per_s(_spec("quick"), 128, d, 16, 3)),
    ]
    for label, fn in rows:
        cells = [f"{fn(d):.3g}" for d in devices] + (["not lent"] if len(devices) == 1 else [])
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def quick_fd_after_budget() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(giraffe_train.Config.quick(), steps=1_000_000, wall_budget_s=BUDGET_MIN * 60,
                                  out_dir=Path(tmp), device="cpu")  # fmt: skip
        done = [e for e in giraffe_train.run(cfg) if isinstance(e, Done)][0]
    m = done.metrics
    print(f"\nquick preset after {BUDGET_MIN:g} min of wall time (data rendering included), CPU:")
    print(
        "| steps | procedural FD | untrained FD | ratio | centroid error px | centroid R² | change outside | alpha in box |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {m['steps']:.0f} | {m['fd']:.3g} | {m['fd_initial']:.3g} | {m['fd'] / m['fd_initial']:.2f} | "
          f"{m['centroid_error_px']:.2f} | {m['centroid_r2']:.3f} | {m['change_outside']:.4f} | {m['alpha_in_box']:.2f} |")  # fmt: skip


def fd_floor(n: int = 1000) -> float:
    """The procedural FD between two independent sets of `n` training-like scenes: the noise floor of the number."""
    spec = _spec("quick")
    encoder = frechet.ProceduralEncoder()
    stats = []
    for seed in (101, 202):
        images = torch.cat(
            [b.images.permute(0, 3, 1, 2) for b in scenes.scene_stream(spec, n, seed, torch.device("cpu"))]
        )
        stats.append(frechet.statistics(frechet.features_in_chunks(encoder, images)))
    return frechet.frechet_distance(*stats[0], *stats[1])


def main() -> None:
    print("GIRAFFE: generator and training throughput, and the quick preset's FD after a budget")
    print(
        f"CPU cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()[0]:.1f}"
    )
    speed_table()
    print(f"\nprocedural FD between two independent sets of 1000 procedural scenes (the floor): {fd_floor():.3g}")
    quick_fd_after_budget()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
