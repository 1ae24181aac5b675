"""What every replay method shares: the batches it sees, the context of the step, the CE on hard labels."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class StepBatch:
    """A preprocessed batch: ``x`` float (augmented/normalised), hard labels, task ids.

    For replay draws ``logits`` holds what the buffer stored with the samples and ``slots`` their slots.
    """

    x: Tensor
    y: Tensor
    task: Tensor
    logits: Tensor | None = None
    slots: Tensor | None = None


@dataclass
class StepContext:
    """What a loss may need to know about where the run is."""

    task: int
    seen_classes: Tensor  # bool (n_classes,): classes whose samples the stream has shown so far
    extra: dict = field(default_factory=dict)


class Method(nn.Module, abc.ABC):
    """A replay method: says how many buffer draws it needs and how its loss is made from the logits.

    ``loss`` gets the logits of the stream batch and of each draw (same order as ``draws``) and returns
    the named loss terms; their sum is the training loss. Keeping the loss a function of logits lets
    the DDN plug-in re-evaluate it under virtual parameters (head-only or full unroll).
    """

    num_draws: int = 1  # independent buffer draws per step
    label_draw: int = 0  # the draw whose CE term DDN soft labels attach to
    trains_jointly: bool = False  # the upper bound trains once on every task's data

    def setup(self, net: nn.Module) -> None:
        """Called once with the network before training (CLS-ER copies it into its EMA models)."""

    @abc.abstractmethod
    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        """Named loss terms of this method; the training loss is their sum."""

    def after_step(self, net: nn.Module, step: int) -> None:
        """Hook after the optimiser step (CLS-ER updates its EMA models here)."""

    def eval_models(self, net: nn.Module) -> dict[str, nn.Module]:
        """The models to evaluate; the first is the one reported."""
        return {"net": net}


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Mean CE on hard labels: the one CE every method uses."""
    return F.cross_entropy(logits, y)


def concat_ce(logits: list[Tensor], labels: list[Tensor]) -> Tensor:
    """CE averaged over the concatenation of several batches (mammoth's ER on stream + buffer)."""
    return cross_entropy(torch.cat(logits), torch.cat(labels))
