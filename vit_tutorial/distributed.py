"""Training on several processes (``torchrun``): joining the group, sharing the batch, adding up results.

Under ``torchrun`` every process runs the same ``train()``. Each takes its own slice of every
global batch, ``DistributedDataParallel`` averages the gradients in ``backward()``, and only the
first process (rank 0) reports and writes files. Outside ``torchrun`` everything here is a no-op
for one process, so the training loop reads the same either way.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class Processes:
    """Who this process is among those that train together."""

    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None  # the device torchrun gave this process; None: choose one

    @property
    def is_main(self) -> bool:
        """The first process speaks for all: it prints, checkpoints and writes metrics."""
        return self.rank == 0


@contextlib.contextmanager
def process_group(requested_device: str | None) -> Iterator[Processes]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1): join the process group (NCCL on GPUs, gloo on CPUs)
    for the block, and leave it afterwards if we joined it here."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield Processes()
        return
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (requested_device in (None, "", "auto")
                                          or str(requested_device).startswith("cuda"))
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    try:
        yield Processes(dist.get_rank(), dist.get_world_size(), device)
    finally:
        if created:
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, procs: Processes, device: torch.device) -> torch.nn.Module:
    """``model`` itself for one process; for several, a ``DistributedDataParallel`` view of it."""
    if procs.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(x: torch.Tensor, procs: Processes) -> torch.Tensor:
    """This process's slice of a global batch."""
    return x if procs.world_size == 1 else x.tensor_split(procs.world_size)[procs.rank]


def all_sum(t: torch.Tensor, procs: Processes) -> torch.Tensor:
    """The sum of ``t`` over all processes (a copy; ``t`` itself is left alone)."""
    if procs.world_size == 1:
        return t
    import torch.distributed as dist

    t = t.clone()
    dist.all_reduce(t)
    return t


__all__ = ["Processes", "process_group", "wrap", "shard", "all_sum"]
