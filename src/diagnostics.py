"""Gradient alignment: does training on the (soft-labelled) buffer push theta the way all data seen so far would?

Every ``every`` steps, for one replay draw and for the whole buffer (up to ``n_samples``; keys ``*_buffer``):
the cosine between grad_theta of its CE (hard labels; and the soft-label CE when a label plug-in is on) and
grad_theta of the CE on a fixed held-out sample of the test data of the tasks seen so far, and their dot
product ("descent": to first order, how fast one SGD step on it lowers that held-out loss per unit learning
rate; the cosine alone hides that a fitted draw's hard-label gradient is near zero). A diagnostic only: it
uses its own random generator and leaves the BatchNorm statistics alone, so it does not change the run.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.nn import functional as F

from src.data.stream import TaskStream
from src.methods.base import StepBatch, cross_entropy
from src.models.backbones import frozen_norm_stats
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
        x_ref, y_ref = self._reference(task)
        dev = learner.device
        with frozen_norm_stats(net):
            g_ref = _flat_grad(cross_entropy(net(learner.preprocess(x_ref.to(dev))), y_ref.to(dev)), params)

        def measure(slots: Tensor, suffix: str = "") -> dict[str, float]:
            d = buf.gather(slots)
            xb = learner.preprocess(d.x)
            with frozen_norm_stats(net):
                feats = net.features(xb)
            logits = net.head(feats)
            g_hard = _flat_grad(cross_entropy(logits, d.y), params)
            out = {f"align_hard{suffix}": float(F.cosine_similarity(g_hard, g_ref, 0)),
                   f"descent_hard{suffix}": float(g_hard @ g_ref)}
            if learner.labels is not None:
                with learner.labels.unrecorded():  # not a training draw: keep it out of the label health figures
                    soft = learner.labels.targets(feats.detach(), StepBatch(xb, d.y, d.task, d.logits, d.slots),
                                                  learner.context())
                g_soft = _flat_grad(soft_cross_entropy(logits, soft), params)
                out.update({f"align_soft{suffix}": float(F.cosine_similarity(g_soft, g_ref, 0)),
                            f"descent_soft{suffix}": float(g_soft @ g_ref)})
            return out

        n = len(buf)
        # one replay draw (what a step trains on: noisy), and the whole buffer (up to n_samples: what the
        # steps of a task add up to, where a consistent push on a few relabelled samples shows)
        row = {"step": step, "task": task,
               **measure(torch.randperm(n, generator=self.generator)[: learner.buffer_batch_size]),
               **measure(torch.arange(min(n, self.n_samples)), "_buffer")}
        self.history.append(row)
        if learner.logger is not None:
            for k, v in row.items():
                if k.startswith(("align_", "descent_")):
                    learner.logger.experiment.add_scalar(f"diagnostics/{k}", v, step)

    def state_dict(self) -> dict:
        """What a resumed run needs to report the same checks as an uninterrupted one."""
        return {"history": list(self.history), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.generator.set_state(state["generator"])

    def summary(self) -> dict | None:
        """Run means of the cosines and descents; with soft labels also the cosines' paired difference (soft −
        hard at the same θ and draw), the share of checks where the soft label aligns better, means per task."""
        if not self.history:
            return None
        out: dict = {"n": len(self.history), **_means(self.history)}
        for suffix in ("", "_buffer"):
            paired = [r[f"align_soft{suffix}"] - r[f"align_hard{suffix}"] for r in self.history
                      if f"align_soft{suffix}" in r]
            if paired:
                out[f"soft_above_hard_share{suffix}"] = sum(d > 0 for d in paired) / len(paired)
        out["by_task"] = []
        for t in sorted({r["task"] for r in self.history}):
            rows = [r for r in self.history if r["task"] == t]
            out["by_task"].append({"task": t, "n": len(rows), **_means(rows)})
        return out


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in [k for k in rows[0] if k.startswith(("align_", "descent_"))]:
        out[k] = sum(r[k] for r in rows) / len(rows)
    for suffix in ("", "_buffer"):
        if f"align_soft{suffix}" in out:
            out[f"soft_minus_hard{suffix}"] = out[f"align_soft{suffix}"] - out[f"align_hard{suffix}"]
    return out
