"""Dark Experience Replay (DER) and DER++ (Buzzega et al. 2020)."""
from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from src.methods.base import Method, StepBatch, StepContext, cross_entropy


def logit_distillation(logits: Tensor, stored: Tensor) -> Tensor:
    """MSE between current logits and the logits stored at insertion, averaged over batch and classes."""
    return F.mse_loss(logits, stored)


class DER(Method):
    """CE(stream) + alpha * MSE(f(x_b), z_b): z_b = the pre-update logits of the sample when it was stored."""

    num_draws = 1

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        terms = {"ce": cross_entropy(stream_logits, stream.y)}
        if draws:
            terms["der_mse"] = self.alpha * logit_distillation(draw_logits[0], draws[0].logits)
        return terms


class DERpp(DER):
    """DER + beta * CE(f(x'_b), y'_b) on a second, independent buffer draw (the draw DDN labels attach to)."""

    num_draws = 2
    label_draw = 1

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__(alpha)
        self.beta = beta

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        terms = super().loss(stream_logits, draw_logits, stream, draws, ctx)
        if len(draws) > 1:
            terms["derpp_ce"] = self.beta * cross_entropy(draw_logits[1], draws[1].y)
        return terms
