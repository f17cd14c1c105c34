"""Several processes (``torchrun``) or one: who this process is, and how results meet.

Under ``torchrun`` the environment names the process's rank and the world size; without it the
suite runs as a world of one and none of this touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a run.

    Attributes:
        rank: Index of this process (0 for a single process).
        size: Number of processes.
    """

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, items: list[Any]) -> list[Any]:
        """This process's share of ``items``: every ``size``-th item from ``rank``."""
        return items[self.rank :: self.size]

    def close(self) -> None:
        """Leave the process group together; a rank exiting alone can abort inside gloo."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait for every process (no-op alone)."""
        if self.distributed:
            dist.barrier()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes (returned unchanged alone)."""
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def maximum(self, value: float) -> float:
        """The largest of one float per process, e.g. so every rank sees the same elapsed time."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def gather_shards(self, shard: torch.Tensor) -> torch.Tensor:
        """Reassemble items sharded by :meth:`shard`, in their original order, on every rank."""
        if not self.distributed:
            return shard
        shards: list[Any] = [None] * self.size
        dist.all_gather_object(shards, shard.cpu())
        total = sum(len(s) for s in shards)
        merged = torch.empty((total, *shard.shape[1:]), dtype=shard.dtype)
        for rank, part in enumerate(shards):
            merged[rank :: self.size] = part
        return merged


SINGLE_PROCESS = World()


def _collective_device() -> torch.device:
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def init_world(device: torch.device) -> World:
    """Join the process group that ``torchrun`` set up, or return a world of one.

    NCCL on CUDA (each rank on its local GPU), gloo on the CPU.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return World(rank=dist.get_rank(), size=dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: its own GPU under torchrun, else ``device``."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
