"""Data-parallel training over torchrun processes, shared by every training pipeline.

Under `torchrun --nproc_per_node N -m pipelines <name> ...` each process has RANK, WORLD_SIZE and LOCAL_RANK in
its environment; `setup()` joins the process group (gloo on the CPU, NCCL on CUDA) and returns a `Dist` that
shards work, sums gradients and broadcasts tensors. In a single process (the app, the tests, a plain CLI run)
every method is a no-op, so a pipeline runs the same code either way.

The recipe the pipelines follow: every rank draws the same global batch from the same seeded generator, takes
its `shard` of it, scales its loss by the *global* batch size, calls `all_reduce_grads` after backward, and
steps its own optimiser; parameters then stay identical on every rank. Rank 0 (`is_main`) reports, writes
artifacts, and is the only rank the CLI records in the run store.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist

from pipelines.core.device import resolve_device


def env_rank() -> int:
    """This process's global rank from torchrun's environment (0 when not under torchrun)."""
    return int(os.environ.get("RANK", "0") or 0)


def env_world_size() -> int:
    """The number of processes from torchrun's environment (1 when not under torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True on rank 0, and in any process that is not part of a torchrun job."""
    return env_rank() == 0


@dataclass
class Dist:
    """Where this process stands in a data-parallel job. The defaults describe a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- splitting work ---------------------------------------------------------------------------------

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of `n` items; the parts of all ranks cover 0..n once (sizes differ by <= 1)."""
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)

    # --- collectives (no-ops in one process) --------------------------------------------------------------

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Sum (or `mean`, `max`) `tensor` over ranks, in place; returns it."""
        if not self.distributed:
            return tensor
        if op not in ("sum", "mean", "max"):
            raise ValueError(f"Unknown reduction {op!r}: use sum, mean or max.")
        tdist.all_reduce(tensor, op=tdist.ReduceOp.MAX if op == "max" else tdist.ReduceOp.SUM)
        if op == "mean":
            tensor /= self.world_size
        return tensor

    def all_reduce_grads(self, params: Any, average: bool = False) -> None:
        """Sum the gradients of `params` over ranks in one coalesced call (a missing gradient counts as zero).

        Sum is right when each rank's loss was divided by the global batch size; `average=True` divides by
        the world size instead, for losses that are per-rank means (what DDP does).
        """
        if not self.distributed:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
        if average:
            flat /= self.world_size
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Overwrite `tensor` on every rank with rank `src`'s, in place; returns it."""
        if self.distributed:
            tdist.broadcast(tensor, src=src)
        return tensor

    def broadcast_module(self, module: torch.nn.Module, src: int = 0) -> None:
        """Make every rank's parameters and buffers equal to rank `src`'s."""
        if not self.distributed:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                tdist.broadcast(t.data, src=src)

    def barrier(self) -> None:
        if self.distributed:
            if self.backend == "nccl":
                tdist.barrier(device_ids=[self.device.index or 0])
            else:
                tdist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` in PyTorch's DistributedDataParallel when distributed (gradients averaged in backward),
        else `model` itself. For pipelines whose forward is one module call; others use all_reduce_grads."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        """Leave the process group if `setup` joined it (call in `finally`)."""
        if self.owns_group and tdist.is_initialized():
            tdist.destroy_process_group()
        self.owns_group = False


def setup(device: str = "auto", timeout_s: float = 1800.0) -> Dist:
    """Resolve the device and, under torchrun (WORLD_SIZE > 1), join the process group.

    CPU: gloo. CUDA: NCCL, with this process on GPU `LOCAL_RANK` (`auto` and `cuda` pick it; an explicit
    `cuda:N` is kept). A group that already exists (a caller made it) is used, not re-made or destroyed.
    """
    world = env_world_size()
    dev = resolve_device(device)
    if world <= 1:
        return Dist(device=dev)
    rank, local_rank = env_rank(), int(os.environ.get("LOCAL_RANK", "0") or 0)
    if dev.type == "cuda" and dev.index is None:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"Rank {rank} wants GPU {local_rank}, but this machine has {torch.cuda.device_count()} GPU(s): "
                "use at most one process per GPU."
            )
        dev = torch.device("cuda", local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = False
    if not tdist.is_initialized():
        kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=timeout_s)}
        if backend == "nccl":
            kwargs["device_id"] = dev
        tdist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world, **kwargs)
        owns = True
    else:
        backend = tdist.get_backend()
    return Dist(rank=rank, world_size=world, local_rank=local_rank, device=dev, backend=str(backend), owns_group=owns)
