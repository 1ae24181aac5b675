"""Gradient alignment: does training on the (soft-labelled) buffer push theta the way all data seen so far would?

Every ``every`` steps: cosine between grad_theta of the CE on a replay draw (hard labels; and the soft-label
CE when a label plug-in is on) and grad_theta of the CE on a fixed held-out sample of the test data of the
tasks seen so far. A diagnostic only: it uses its own random generator and cloned BatchNorm statistics, so
it does not change the run.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.func import functional_call
from torch.nn import functional as F

from src.data.stream import TaskStream
from src.methods.base import StepBatch, cross_entropy
from src.plugins.labels import soft_cross_entropy


def _flat_grad(loss: Tensor, params: list[Tensor]) -> Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


class GradientAlignment(pl.Callback):
    def __init__(self, stream: TaskStream, every: int, n_samples: int = 500, seed: int = 0) -> None:
        self.stream, self.every, self.n_samples = stream, every, n_samples
        self.generator = torch.Generator().manual_seed(seed + 99)
        self.history: list[dict[str, float]] = []

    def _reference(self, task: int) -> tuple[Tensor, Tensor]:
        xs, ys = zip(*(self.stream.test_set(t) for t in range(task + 1)))
        x, y = torch.cat(xs), torch.cat(ys)
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(task))[: self.n_samples]
        return x[pick], y[pick]

    def on_train_batch_end(self, trainer, learner, outputs, batch, batch_idx) -> None:
        step = int(learner.total_steps)
        buf = learner.buffer
        if self.every <= 0 or step % self.every or buf is None or buf.is_empty:
            return
        task = int(learner.current_task)
        net = learner.net
        params = [p for p in net.parameters() if p.requires_grad]
        named = {n: p for n, p in net.named_parameters()}
        buffers = {n: b.clone() for n, b in net.named_buffers()}

        def fwd(x: Tensor, features_only: bool = False) -> Tensor:
            return functional_call(net, (named, buffers), (x,), {"features_only": features_only})

        x_ref, y_ref = self._reference(task)
        dev = learner.device
        g_ref = _flat_grad(cross_entropy(fwd(learner.preprocess(x_ref.to(dev))), y_ref.to(dev)), params)
        n = len(buf)
        slots = torch.randperm(n, generator=self.generator)[: learner.buffer_batch_size]
        d = buf.gather(slots)
        xb = learner.preprocess(d.x)
        feats = fwd(xb, features_only=True)
        logits = net.head(feats)
        row = {"step": step, "task": task,
               "align_hard": float(F.cosine_similarity(_flat_grad(cross_entropy(logits, d.y), params), g_ref, 0))}
        if learner.labels is not None:
            soft = learner.labels.targets(feats.detach(), StepBatch(xb, d.y, d.task, d.logits, d.slots),
                                          learner.context())
            g_soft = _flat_grad(soft_cross_entropy(logits, soft), params)
            row["align_soft"] = float(F.cosine_similarity(g_soft, g_ref, 0))
        self.history.append(row)
        if learner.logger is not None:
            for k in ("align_hard", "align_soft"):
                if k in row:
                    learner.logger.experiment.add_scalar(f"diagnostics/{k}", row[k], step)

    def summary(self) -> dict[str, float] | None:
        if not self.history:
            return None
        out: dict[str, float] = {"n": len(self.history)}
        for k in ("align_hard", "align_soft"):
            vals = [r[k] for r in self.history if k in r]
            if vals:
                out[k] = sum(vals) / len(vals)
        return out
