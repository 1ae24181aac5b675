"""ER-ACE: experience replay with asymmetric cross-entropy (Caccia et al. 2022)."""
from __future__ import annotations

import torch
from torch import Tensor

from src.methods.base import Method, StepBatch, StepContext, cross_entropy


def ace_mask(stream_y: Tensor, seen_classes: Tensor, unmask_unseen: bool) -> Tensor:
    """(n_classes,) bool of logits kept for the stream CE: classes present in the batch, plus (reference
    code) classes never seen yet; seen-but-absent classes are masked out."""
    keep = torch.zeros_like(seen_classes)
    keep[stream_y] = True
    if unmask_unseen:
        keep |= ~seen_classes
    return keep


class ERACE(Method):
    """CE on the stream with absent seen classes masked + plain CE on a buffer draw (summed or averaged)."""

    num_draws = 1

    def __init__(self, reduction: str, unmask_unseen: bool) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"baseline.method.reduction={reduction!r} is invalid: choose sum or mean")
        self.reduction, self.unmask_unseen = reduction, unmask_unseen

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        keep = ace_mask(stream.y, ctx.seen_classes, self.unmask_unseen)
        masked = stream_logits.masked_fill(~keep, torch.finfo(stream_logits.dtype).min)
        terms = {"ace_stream": cross_entropy(masked, stream.y)}
        if draws:
            terms["ace_buffer"] = cross_entropy(draw_logits[0], draws[0].y)
        if self.reduction == "mean" and draws:
            terms = {k: v / 2 for k, v in terms.items()}
        return terms
