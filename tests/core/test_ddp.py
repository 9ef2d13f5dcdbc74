"""Data parallelism: the single-process no-ops, sharding, and a real 2-process gloo run under torchrun."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipelines.core import ddp
from pipelines.core.runs import RunStore
from pipelines.volume import pipeline as volume

ROOT = Path(__file__).resolve().parents[2]


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    dist = ddp.setup("cpu")
    assert not dist.distributed and dist.is_main and dist.device == torch.device("cpu")
    t = torch.tensor([1.0, 2.0])
    assert dist.all_reduce(t) is t and t.tolist() == [1.0, 2.0]
    assert dist.broadcast(t) is t
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    dist.all_reduce_grads([p])
    assert p.grad.tolist() == [2.0, 2.0, 2.0]
    assert dist.wrap(torch.nn.Linear(2, 2)).__class__ is torch.nn.Linear
    dist.barrier()
    dist.close()
    assert ddp.is_main_process()


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("n", [0, 1, 5, 750 * 6, 1001])
def test_shards_cover_every_item_once(world, n):
    parts = [ddp.Dist(rank=r, world_size=world).shard(n) for r in range(world)]
    covered = [i for s in parts for i in range(n)[s]]
    assert covered == list(range(n))
    sizes = [len(range(n)[s]) for s in parts]
    assert max(sizes) - min(sizes) <= 1


def test_env_rank(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert ddp.env_rank() == 3 and ddp.env_world_size() == 4 and not ddp.is_main_process()


def test_torchrun_two_gloo_processes_record_one_run_that_matches_one_process(tmp_path):
    """Rays are split over 2 ranks and gradients summed: the result equals the single-process run's."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pipelines", "volume", "--preset", "tiny", "--device", "cpu", "--orbit-frames", "0",
           "--data-dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("run ") >= 1 and out.stdout.count('"metrics"') == 1, "only rank 0 prints"
    runs = RunStore(tmp_path).list()
    assert len(runs) == 1, "only rank 0 records the run"
    run = runs[0]
    assert run.status == "done" and run.metrics["world_size"] == 2.0
    assert len(list((tmp_path / "runs").iterdir())) == 1, "only rank 0 writes"
    assert all(Path(p).is_file() for p in run.artifacts.values())

    cfg = dataclasses.replace(volume.Config.tiny(), orbit_frames=0, device="cpu", out_dir=tmp_path / "single")
    single = list(volume.run(cfg))[-1].metrics
    # Equal up to float summation order (the processes may use different thread counts).
    assert run.metrics["psnr_heldout"] == pytest.approx(single["psnr_heldout"], abs=0.3), (run.metrics, single)
