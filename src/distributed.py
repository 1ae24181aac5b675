"""Where this process stands in torch.distributed: one lookup for the stream, evaluation, DDN and I/O."""
from __future__ import annotations

import torch


def rank_world() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) outside torch.distributed)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
