"""Reservoir replay buffer (Vitter's algorithm R) kept in registered tensors.

Everything lives in ``register_buffer`` tensors plus the sampling generator's state (``extra_state``), so
the buffer moves with the module to the GPU, survives checkpoints and spawned processes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class BufferDraw:
    """One replay draw: raw uint8 examples and what was stored with them, plus their slot indices."""

    x: Tensor
    y: Tensor
    task: Tensor
    logits: Tensor
    slots: Tensor


class ReservoirBuffer(nn.Module):
    """Fixed-size reservoir over every stream sample seen.

    Insertion (after the optimiser step): sample number n (0-based count of samples seen before it)
    goes to slot n while n < size; otherwise r ~ U{0..n} and the sample replaces slot r if r < size.
    """

    def __init__(self, size: int, image_shape: tuple[int, ...], n_classes: int, seed: int = 0) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("examples", torch.zeros(size, *image_shape, dtype=torch.uint8))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("logits", torch.zeros(size, n_classes))
        self.register_buffer("task_ids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("num_seen", torch.zeros((), dtype=torch.long))
        self.generator = torch.Generator().manual_seed(seed)

    # the generator is state the run's future depends on: keep it in the state dict
    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __len__(self) -> int:
        return int(min(self.num_seen.item(), self.size))

    @property
    def is_empty(self) -> bool:
        return self.size == 0 or int(self.num_seen) == 0

    def reservoir_slots(self, n_new: int) -> Tensor:
        """Slot for each of ``n_new`` incoming samples (-1 = not stored); advances ``num_seen``."""
        # plain Python ints: a tensor write per sample costs a dispatched op each (a GPU step is bound
        # by its op count); only the draw itself goes through the generator, so the stream is unchanged
        slots: list[int] = []
        n = int(self.num_seen)
        for _ in range(n_new):
            if n < self.size:
                slots.append(n)
            else:
                r = int(torch.randint(0, n + 1, (1,), generator=self.generator))
                slots.append(r if r < self.size else -1)
            n += 1
        self.num_seen.fill_(n)
        # a later sample of the same batch that lands on the same slot replaces the earlier one, as a
        # per-sample loop would: the earlier one counts as not stored
        taken: set[int] = set()
        for i in range(n_new - 1, -1, -1):
            if slots[i] in taken:
                slots[i] = -1
            elif slots[i] >= 0:
                taken.add(slots[i])
        return torch.tensor(slots, dtype=torch.long)

    @torch.no_grad()
    def add(self, x: Tensor, y: Tensor, task: Tensor, logits: Tensor | None = None) -> Tensor:
        """Insert a stream batch; returns the slot each sample went to (-1 = dropped)."""
        if self.size == 0:
            self.num_seen += len(y)
            return torch.full((len(y),), -1, dtype=torch.long)
        slots = self.reservoir_slots(len(y))
        keep = slots >= 0
        if keep.any():
            dst = slots[keep].to(self.examples.device)
            src = keep.nonzero().flatten().to(x.device)
            self.examples[dst] = x[src].to(self.examples.dtype)
            self.labels[dst] = y[src]
            self.task_ids[dst] = task[src]
            if logits is not None:
                self.logits[dst] = logits[src].to(self.logits.dtype)
        return slots

    def sample(self, batch_size: int, mask: Tensor | None = None,
               generator: torch.Generator | None = None) -> BufferDraw | None:
        """Uniform draw without replacement from the filled slots (all of them if fewer are filled).

        ``mask`` (bool over slots) restricts the draw, e.g. to samples of earlier tasks; ``generator``
        replaces the buffer's own (a diagnostic or plug-in must not shift the replay draws).
        """
        filled = torch.arange(len(self))
        if mask is not None:
            filled = filled[mask[: len(self)].cpu()]
        if len(filled) == 0 or batch_size <= 0:
            return None
        pick = filled[torch.randperm(len(filled), generator=generator or self.generator)[:batch_size]]
        return self.gather(pick)

    def gather(self, slots: Tensor) -> BufferDraw:
        dev = self.examples.device
        s = slots.to(dev)
        return BufferDraw(self.examples[s], self.labels[s], self.task_ids[s], self.logits[s], s)
