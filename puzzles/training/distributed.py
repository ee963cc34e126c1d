"""Data-parallel training: this process's rank, and joining/leaving torchrun's process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        if torch.distributed.get_backend() == "nccl":
            tensor = tensor.cuda()
        torch.distributed.all_reduce(tensor)
        return tensor.cpu().tolist()


def start_distributed(device: str) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1 in the environment)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Distributed(rank, world, local_rank)


def stop_distributed(dist: Distributed) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
