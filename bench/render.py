"""Render benchmark on the CPU: images per second and peak memory for 128/256/512 px, meshes of 1k/10k/100k faces,
hard (1 face per pixel) and soft (50 faces per pixel) Phong, with PyTorch3D's MeshRasterizer and the tiled one.

`python -m bench render`. BENCH_THREADS sets torch's threads (default 1: the rasteriser kernel is single-threaded,
and on a busy 2-core machine two threads make the small shading ops several times slower).
BENCH_RENDER_SIZES / BENCH_RENDER_FACES (comma lists) shrink the grid for a quick look.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.render.factories import raster_bytes
from pipelines.shading.settings import RenderSettings

ROOT = Path(__file__).resolve().parent.parent

SIZES = (128, 256, 512)
FACES = (1_000, 10_000, 100_000)
MODES = (("hard", 1), ("soft", 50))
MIN_SECONDS = 1.0  # repeat a cell until this much time has passed (at most MAX_REPS renders)
MAX_REPS = 5


@dataclass
class Cell:
    size: int
    faces: int
    mode: str
    k: int
    rasterizer: str
    images_per_s: float
    seconds_per_image: float
    reps: int
    peak_mib: float
    guard_mib: float


def measure(size: int, faces: int, mode: str, k: int, tiled: bool) -> Cell:
    """Render a torus of about `faces` triangles until MIN_SECONDS pass (after one warm-up when it is cheap)."""
    import torch

    from pipelines.render.procedural import torus_with_faces
    from pipelines.shading import lab as shading

    mesh = torus_with_faces(faces)
    settings = RenderSettings(image_size=size, memory_budget_mb=16_384)
    if mode == "soft":
        settings = RenderSettings.book_soft(image_size=size, faces_per_pixel=k, memory_budget_mb=16_384)
    gc.collect()
    baseline = _rss()
    with torch.no_grad():
        start = time.perf_counter()
        shading.render(mesh, settings, tiled=tiled)
        first = time.perf_counter() - start
        times = [first]
        if first < MIN_SECONDS:  # cheap: treat the first render as warm-up and time the rest
            times = []
            begin = time.perf_counter()
            while len(times) < MAX_REPS and (not times or time.perf_counter() - begin < MIN_SECONDS):
                t0 = time.perf_counter()
                shading.render(mesh, settings, tiled=tiled)
                times.append(time.perf_counter() - t0)
    best = min(times)
    return Cell(
        size,
        int(mesh.num_faces_per_mesh()[0]),
        mode,
        k,
        "tiled" if tiled else "pytorch3d",
        1.0 / best,
        best,
        len(times),
        (_max_rss() - baseline) / 2**20,
        raster_bytes(1, size, size, k) / 2**20,
    )


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _max_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_in_subprocess(size: int, faces: int, mode: str, k: int, tiled: bool) -> Cell:
    """`measure` in a fresh interpreter, so the peak resident memory belongs to this cell alone."""
    args = [sys.executable, "-m", "bench.render", "--cell", str(size), str(faces), mode, str(k), "1" if tiled else "0"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT, timeout=3600)
    return Cell(**json.loads(out.stdout.strip().splitlines()[-1]))


def table(cells: list[Cell]) -> str:
    rows = [
        "| px | faces | mode (K) | PyTorch3D img/s | tiled img/s | speed-up | peak MiB PyTorch3D / tiled | guard estimate MiB | measured B per slot |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_key: dict[tuple, dict[str, Cell]] = {}
    for c in cells:
        by_key.setdefault((c.size, c.faces, c.mode, c.k), {})[c.rasterizer] = c
    for (size, faces, mode, k), pair in by_key.items():
        lib, til = pair.get("pytorch3d"), pair.get("tiled")
        speed = f"{lib.seconds_per_image / til.seconds_per_image:.1f}×" if lib and til else "-"
        guard = next(iter(pair.values())).guard_mib
        per_slot = max(c.peak_mib for c in pair.values()) * 2**20 / (size * size * k)
        rows.append(
            f"| {size} | {faces:,} | {mode} ({k}) | {_ips(lib)} | {_ips(til)} | {speed} | "
            f"{_mib(lib)} / {_mib(til)} | {guard:,.0f} | {per_slot:,.0f} |"
        )
    return "\n".join(rows)


def _ips(c: Cell | None) -> str:
    if c is None:
        return "-"
    return f"{c.images_per_s:.3g}" if c.images_per_s >= 0.1 else f"{c.images_per_s:.3g} ({c.seconds_per_image:.0f} s)"


def _mib(c: Cell | None) -> str:
    return "-" if c is None else f"{c.peak_mib:,.0f}"


def _ints(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    text = os.environ.get(name, "")
    return tuple(int(x) for x in text.split(",") if x.strip()) or default


def run_grid(sizes=SIZES, faces=FACES, modes=MODES, rasterizers=(False, True), echo: bool = True) -> list[Cell]:
    cells = []
    for size in sizes:
        for n in faces:
            for mode, k in modes:
                for tiled in rasterizers:
                    cell = measure_in_subprocess(size, n, mode, k, tiled)
                    cells.append(cell)
                    if echo:
                        print(json.dumps(cell.__dict__), flush=True)
    return cells


def main() -> None:
    import platform

    import torch

    threads = int(os.environ.get("BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    os.environ["BENCH_THREADS"] = str(threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"render benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {threads}, load {load:.1f}",
        flush=True,
    )
    t0 = time.perf_counter()
    cells = run_grid(_ints("BENCH_RENDER_SIZES", SIZES), _ints("BENCH_RENDER_FACES", FACES))
    print()
    print(table(cells))
    print(f"\n{len(cells)} cells in {time.perf_counter() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--cell":
        import torch

        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
        size, faces, mode, k, tiled = sys.argv[2:]
        print(json.dumps(measure(int(size), int(faces), mode, int(k), tiled == "1").__dict__))
    else:
        main()
