"""SynSin benchmark: inference ms per view (encode + splat + refine) at 64/128/256 px and training steps/s, on the
CPU (1 and 2 torch threads, each in a fresh process) and on the GPU when one is present.

Network sizes: the shipped small model (ngf 16, 6-level U-Net, radius 1.5 px, K 8, the studio's RGB skip, trained
with the photometric and smoothness terms) at 64 px, the same at 128 px (7 levels, radius 3 px, K 16), and the
official network and losses (ngf 64, 8-level U-Net, radius 4 px, K 128) at 256 px. PyTorch3D's CPU point rasteriser tests every point at every pixel, so its cost grows with the fourth power
of the image side: the 256 px official row is measured with one view and one step only. `SYNSIN_BENCH_SIZES=64,128`
limits the sizes measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from pipelines.core import ddp
from pipelines.synsin import train
from pipelines.synsin.model import ModelSpec, SynSin
from pipelines.synsin.rooms import PairBatch

CASES = {
    64: {
        "image_size": 64,
        "ngf": 16,
        "unet_filters": 16,
        "unet_levels": 6,
        "radius_px": 1.5,
        "points_per_pixel": 8,
        "rgb_skip": True,
        "hole_fill": "pushpull",
    },
    128: {
        "image_size": 128,
        "ngf": 16,
        "unet_filters": 16,
        "unet_levels": 7,
        "radius_px": 3.0,
        "points_per_pixel": 16,
        "rgb_skip": True,
        "hole_fill": "pushpull",
    },
    256: {
        "image_size": 256,
        "ngf": 64,
        "unet_filters": 32,
        "unet_levels": 8,
        "radius_px": 4.0,
        "points_per_pixel": 128,
    },
}


def measure(size: int, device: str, threads: int) -> dict:
    """One case in this process: ms per view (batch 1, eval) and training steps/s (batch 2, L1 + substitute)."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    spec = ModelSpec(**CASES[size], noise=0.0)
    model = SynSin(spec, spectral=False).to(dev).eval()
    x = torch.rand(1, 3, size, size, device=dev)
    r, t = torch.eye(3, device=dev)[None], torch.tensor([[0.1, 0.0, 0.2]], device=dev)
    heavy = size >= 256 and dev.type == "cpu"  # one cold measurement: the naive CPU rasteriser takes seconds
    reps = 1 if heavy else 3
    with torch.no_grad():
        if not heavy:
            model(x, r, t)  # warm-up
        _sync(dev)
        start = time.perf_counter()
        for _ in range(reps):
            model(x, r, t)
        _sync(dev)
    infer_ms = (time.perf_counter() - start) / reps * 1000
    studio = {"w_photo": 1.0, "w_smooth": 1e-3} if CASES[size].get("rgb_skip") else {}
    cfg = train.Config(**CASES[size], **studio, noise=0.0, batch_size=2, w_gan=0.0, w_feat=0.0, device=device)
    trainer = train.make_trainer(cfg, ddp.Dist(device=dev))
    pairs = _pairs(size, dev)
    if not heavy:
        train.train_step(trainer, pairs, None, ddp.Dist(device=dev))  # warm-up
    _sync(dev)
    start = time.perf_counter()
    for _ in range(reps):
        train.train_step(trainer, pairs, None, ddp.Dist(device=dev))
    _sync(dev)
    steps_per_s = reps / (time.perf_counter() - start)
    return {"size": size, "device": device, "threads": threads, "infer_ms": infer_ms, "steps_per_s": steps_per_s}


def _pairs(size: int, dev: torch.device):
    img = torch.rand(2, 3, size, size, device=dev)
    depth = torch.full((2, 1, size, size), 2.0, device=dev)
    return PairBatch(
        img, img, depth, depth, torch.eye(3, device=dev).expand(2, 3, 3).clone(), torch.zeros(2, 3, device=dev)
    )


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _child(size: int, device: str, threads: int) -> dict:
    code = f"import json; from bench.synsin import measure; print('RESULT ' + json.dumps(measure({size}, {device!r}, {threads})))"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"size": size, "device": device, "threads": threads, "error": proc.stderr.strip().splitlines()[-1:]}


def _cell(r: dict, key: str, fmt: str) -> str:
    return format(r[key], fmt) if key in r else "failed"


def main() -> None:
    print(f"SynSin, CPU cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    sizes = [int(v) for v in os.environ.get("SYNSIN_BENCH_SIZES", "").split(",") if v.strip()] or list(CASES)
    for size in sizes:
        # The official 256 px network takes minutes per training step on a CPU: one thread only.
        for threads in (1,) if size >= 256 else (1, 2):
            rows.append(_child(size, "cpu", threads))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(_child(size, "cuda", 1) if torch.cuda.is_available() else {"size": size, "device": "cuda"})
    print("| image | network | device | inference ms/view | training steps/s (batch 2) |")
    print("|---|---|---|---|---|")
    for r in rows:
        c = CASES[r["size"]]
        net = f"ngf {c['ngf']}, U-Net {c['unet_levels']}, r {c['radius_px']} px, K {c['points_per_pixel']}"
        net += ", RGB skip + photometric" if c.get("rgb_skip") else ", official"
        if r["device"] == "cuda" and "threads" not in r:
            print(f"| {r['size']} px | {net} | GPU | not lent | not lent |")
            continue
        where = "GPU" if r["device"] == "cuda" else f"CPU, {r['threads']} thread(s)"
        print(
            f"| {r['size']} px | {net} | {where} | {_cell(r, 'infer_ms', '.0f')} | {_cell(r, 'steps_per_s', '.2f')} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
