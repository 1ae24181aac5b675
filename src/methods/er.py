"""Experience Replay and fine-tuning."""
from __future__ import annotations

from torch import Tensor

from src.methods.base import Method, StepBatch, StepContext, concat_ce, cross_entropy


class ER(Method):
    """ER: CE over the stream batch and one buffer draw, averaged over all their samples (mammoth)."""

    num_draws = 1

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        return {"ce": concat_ce([stream_logits, *draw_logits], [stream.y, *(d.y for d in draws)])}


class Finetune(Method):
    """No replay at all: the lower bound."""

    num_draws = 0

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        return {"ce": cross_entropy(stream_logits, stream.y)}


class Joint(Finetune):
    """Upper bound: every task's data at once, shuffled iid, no buffer."""

    trains_jointly = True
