"""CLS-ER (Arani et al. 2022): a working model with a plastic and a stable EMA copy as semantic memories."""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from src.methods.base import Method, StepBatch, StepContext, concat_ce


def ema_decay(step: int, ema_alpha: float) -> float:
    """min(1 - 1/(step + 1), ema_alpha): a fast warm-up, then the configured decay."""
    return min(1.0 - 1.0 / (step + 1), ema_alpha)


@torch.no_grad()
def ema_update(ema: nn.Module, live: nn.Module, decay: float) -> None:
    """theta_ema <- decay * theta_ema + (1 - decay) * theta (parameters only, as the reference code)."""
    for e, p in zip(ema.parameters(), live.parameters()):
        e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def consistency_targets(stable_logits: Tensor, plastic_logits: Tensor, y: Tensor) -> Tensor:
    """Per sample, the logits of the EMA model whose softmax probability on the true label is higher."""
    p_stable = F.softmax(stable_logits, 1).gather(1, y[:, None])
    p_plastic = F.softmax(plastic_logits, 1).gather(1, y[:, None])
    return torch.where(p_stable >= p_plastic, stable_logits, plastic_logits)


class CLSER(Method):
    """CE(stream + buffer) + reg_weight * MSE(f(x_b), target of the more confident EMA model)."""

    num_draws = 1

    def __init__(self, reg_weight: float, stable_freq: float, plastic_freq: float, stable_alpha: float,
                 plastic_alpha: float, eval_model: str, seed: int) -> None:
        super().__init__()
        if eval_model not in ("stable", "plastic", "working"):
            raise ValueError(f"baseline.method.eval_model={eval_model!r} is invalid: choose stable, plastic or working")
        self.reg_weight, self.eval_model = reg_weight, eval_model
        self.freq = {"stable": stable_freq, "plastic": plastic_freq}
        self.ema_alpha = {"stable": stable_alpha, "plastic": plastic_alpha}
        self.generator = torch.Generator().manual_seed(seed + 777)
        self.register_buffer("updates", torch.zeros(2, dtype=torch.long))  # stable, plastic update counts
        self._cache: tuple[int, Tensor] | None = None

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def setup(self, net: nn.Module) -> None:
        self.stable = copy.deepcopy(net).requires_grad_(False)
        self.plastic = copy.deepcopy(net).requires_grad_(False)

    def targets(self, draw: StepBatch) -> Tensor:
        # computed once per draw: a DDN virtual step re-evaluating the loss must not run the EMA models
        # (and move their BatchNorm statistics) a second time
        if self._cache is None or self._cache[0] != id(draw.x):
            with torch.no_grad():
                self._cache = (id(draw.x), consistency_targets(self.stable(draw.x), self.plastic(draw.x), draw.y))
        return self._cache[1]

    def loss(self, stream_logits: Tensor, draw_logits: list[Tensor], stream: StepBatch,
             draws: list[StepBatch], ctx: StepContext) -> dict[str, Tensor]:
        terms = {"ce": concat_ce([stream_logits, *draw_logits], [stream.y, *(d.y for d in draws)])}
        if draws:
            terms["consistency"] = self.reg_weight * F.mse_loss(draw_logits[0], self.targets(draws[0]))
        return terms

    def after_step(self, net: nn.Module, step: int) -> None:
        self._cache = None
        for i, name in enumerate(("stable", "plastic")):
            if float(torch.rand(1, generator=self.generator)) < self.freq[name]:
                ema_update(getattr(self, name), net, ema_decay(step, self.ema_alpha[name]))
                self.updates[i] += 1

    def eval_models(self, net: nn.Module) -> dict[str, nn.Module]:
        models = {"stable": self.stable, "plastic": self.plastic, "working": net}
        return {self.eval_model: models[self.eval_model], **{k: v for k, v in models.items() if k != self.eval_model}}
