"""Inspect benchmark: load, statistics, cross-check and GLB export times and peak memory, 10k to 1M faces."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
FORMATS = ("ply", "obj")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(path: Path) -> dict:
    """One case, in this process: each stage timed, then the whole pipeline end to end (as the app runs it)."""
    import dataclasses

    from pipelines.files.cross_check import cross_check
    from pipelines.files.export import export_glb
    from pipelines.files.loader import load_asset
    from pipelines.files.stats import geometry_stats
    from pipelines.files.types import Limits
    from pipelines.inspect import pipeline

    limits = Limits()
    # Warm up: the first load imports the readers (PyTorch3D io, trimesh, open3d); that is start-up, not load time.
    warm = Path(__file__).resolve().parent.parent / "assets" / "torus_binary.ply"
    warm_asset = load_asset(warm, limits)
    geometry_stats(warm_asset)
    cross_check(warm_asset)
    base = _rss_mb()
    t0 = time.perf_counter()
    asset = load_asset(path, limits)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    geometry_stats(asset)
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    cross_check(asset)
    t_check = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        export_glb(asset, Path(tmp) / "m.glb")
        t_glb = time.perf_counter() - t0
        del asset
        cfg = dataclasses.replace(pipeline.Config.quick(), files=(str(path),), out_dir=Path(tmp) / "run")
        t0 = time.perf_counter()
        for _ in pipeline.run(cfg):
            pass
        t_e2e = time.perf_counter() - t0
    return {
        "load_s": t_load,
        "stats_s": t_stats,
        "cross_check_s": t_check,
        "glb_s": t_glb,
        "end_to_end_s": t_e2e,
        "peak_rss_mb": _rss_mb(),
        "rss_after_imports_mb": base,
    }


def main() -> None:
    from assets.make_assets import make_mesh_file

    print(
        "Inspect: end to end = stage upload + load + statistics + cross-check + GLB + 10k surface samples (quick preset)."
    )
    print(
        "Each case runs in a fresh process after a warm-up load (imports excluded from times); peak RSS includes the imports.\n"
    )
    header = f"{'format':6} {'faces':>9} {'MB':>7} {'load s':>7} {'stats s':>7} {'xcheck s':>8} {'GLB s':>6} {'e2e s':>6} {'peak RSS MB':>11}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            for n in SIZES:
                path = Path(tmp) / f"mesh_{n}.{fmt}"
                make_mesh_file(path, n, fmt)
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        f"import json, bench.inspect as b; from pathlib import Path; print(json.dumps(b.measure(Path({str(path)!r}))))",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd=Path(__file__).resolve().parent.parent,
                )
                if out.returncode != 0:
                    print(f"{fmt:6} {n:>9} failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                mb = path.stat().st_size / 2**20
                print(
                    f"{fmt:6} {n:>9} {mb:7.1f} {r['load_s']:7.2f} {r['stats_s']:7.2f} {r['cross_check_s']:8.2f} "
                    f"{r['glb_s']:6.2f} {r['end_to_end_s']:6.2f} {r['peak_rss_mb']:11.0f}",
                    flush=True,
                )
                path.unlink()


if __name__ == "__main__":
    main()
