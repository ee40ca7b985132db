"""Processes: one plain process, or one of several started by `torchrun` (DDP).

torchrun (`python -m torch.distributed.run`) starts the processes and sets RANK, LOCAL_RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT; we join its process group through `env://`: NCCL when
training on CUDA devices (one per local rank), gloo on the CPU. Under torchrun the run is DDP
even with one process; without those variables it runs alone and nothing distributed is touched.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import TrainError


@dataclass
class Processes:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str | None  # None: not distributed

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all processes (float64 on the training device)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.distributed:
            dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order (pickled: only for small plain values)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def agree(self, error: BaseException | None) -> None:
        """Collective: if any process failed its checks, every process raises (the first one
        that found a problem with its own message, the others quietly), so none is left
        waiting and the message is printed once."""
        if not self.distributed:
            if error is not None:
                raise error
            return
        messages = self.gather(None if error is None else str(error))
        failed = [rank for rank, message in enumerate(messages) if message is not None]
        if not failed:
            return
        if self.rank == failed[0] and error is not None:
            raise error  # printed once, by the first rank that found a problem
        raise TrainError(f"rank {failed[0]} stopped: {messages[failed[0]]}", quiet=True)

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm running statistics) before evaluating,
        so that all evaluate the model that rank 0 saves."""
        if self.distributed:
            for buf in module.buffers():
                dist.broadcast(buf, 0)

    def synchronize(self) -> None:
        """Wait until every process gets here (a barrier; nothing when alone)."""
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Free what still holds the process group, then tear it down. The DDP wrapper and its
        reducer sit in reference cycles; left to the interpreter's exit, a gloo thread was
        destroyed unjoined ("terminate called without an active exception", SIGABRT) in about
        one run in eight on a loaded machine. Collected here first: none in 95 such runs."""
        if self.distributed and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def start(device: str = "auto") -> Processes:
    """Join torchrun's process group when launched by it; pick the device."""
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # by torchrun
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available",
                             "use --device cpu (or leave --device out)")
        if local_rank >= torch.cuda.device_count():
            raise TrainError(f"local rank {local_rank} has no CUDA device (this node has "
                             f"{torch.cuda.device_count()})",
                             "start at most one process per GPU: --nproc_per_node=gpu")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise TrainError(f"--device {device}: expected auto, cpu or cuda")
    backend = None
    if launched:  # even with one process: the same code path as with many
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        dist.init_process_group(backend, init_method="env://", **kwargs)
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return Processes(rank, world_size, local_rank, local_world, dev, backend)
