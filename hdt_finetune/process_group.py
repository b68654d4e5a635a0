"""The processes of one job (a corpus distillation, a fine-tune and the set it distils on
demand): who we are and how tensors are combined across us.

One process needs nothing. Under `accelerate launch` or `torchrun` (on CPUs with
ACCELERATE_USE_CPU=true), Accelerate's PartialState sets up the process group (gloo on
CPUs, NCCL on GPUs) and the collectives below go through torch.distributed. It is set up
once per program and shared: an Accelerator made later joins the same group. A program
that joined one calls `leave()` when its work is done.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_environment(cls) -> ProcessGroup:
        from accelerate import PartialState
        from accelerate.utils import parse_flag_from_env

        # Without a GPU, or when asked to, Accelerate joins CPU processes (gloo); it does
        # so only when told `cpu=True`, as Accelerator() tells it from ACCELERATE_USE_CPU.
        cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
        state = PartialState(cpu=cpu)
        return cls(state.process_index, state.num_processes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean_(self, tensors: list[torch.Tensor]) -> None:
        """Average each tensor across processes, in place."""
        if self.world == 1:
            return
        for tensor in tensors:
            torch.distributed.all_reduce(tensor)
            tensor /= self.world

    def broadcast_(self, tensor: torch.Tensor) -> None:
        """Overwrite `tensor` with the main process' values."""
        if self.world > 1:
            torch.distributed.broadcast(tensor, src=0)

    def gather(self, value: object) -> list[object]:
        """Every process' `value`, in rank order, on every process."""
        if self.world == 1:
            return [value]
        values: list[object] = [None] * self.world
        torch.distributed.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def leave() -> None:
    """Wait for every process, then leave the group: called by each process once its work is
    done. Left to interpreter exit, gloo's threads can still hold tensors while Python is
    being torn down, and a process that had finished its work aborts (SIGABRT)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
