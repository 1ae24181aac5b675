"""Label plug-ins: what target the replay draw's extra ``alpha``-weighted term is trained against.

``labels=hard`` means no plug-in at all (the plain baseline). The fixed variants here are the controls
of the paper's sanity table; the learned ones (``ddn``, ``l2y``) live in :mod:`src.plugins.ddn`.
"""
from __future__ import annotations

import abc
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from src.methods.base import StepBatch, StepContext

log = logging.getLogger("ddn_cl")
COLLAPSE_RATIO = 0.9  # entropy above this share of log(n_seen) counts as collapse
FLIP_SHARE = 0.3  # a learned label variant whose argmax differs from the hard label on this share of a draw

if TYPE_CHECKING:  # the learner imports this module; only type hints go the other way
    from src.learner import ContinualLearner


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the batch of -sum_c target_c * log softmax(logits)_c (targets are probabilities)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def restrict_to_seen(scores: Tensor, seen: Tensor) -> Tensor:
    """Softmax over the classes seen so far; unseen classes get probability 0."""
    return torch.softmax(scores.masked_fill(~seen, float("-inf")), dim=1)


class LabelPlugin(nn.Module, abc.ABC):
    """Base: fixed targets, no outer step. Subclasses say how targets are made."""

    warn_flips = False  # learned variants: warn when their labels contradict the hard label (FLIP_SHARE)

    def maybe_outer_step(self, learner: ContinualLearner, stream: StepBatch, draws: list[StepBatch],
                         ctx: StepContext, step: int, feats: list[Tensor]) -> None:
        """Learned variants update their parameters here, before the real step. ``feats``: the detached
        penultimate features of [stream, *draws] at the current parameters."""

    def end_task(self, learner: ContinualLearner, stream, task: int) -> None:
        """Called when task ``task`` has been trained, before it is evaluated."""

    def on_insert(self, slots: Tensor, y: Tensor) -> None:
        """Called after reservoir insertion with the slot each stream sample went to (-1: dropped)."""

    @abc.abstractmethod
    def targets(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        """Soft labels (B, n_classes) for the replay draw, detached: the inner step does not train them."""

    def diagnostics(self) -> dict[str, float]:
        """Soft-label health of the latest replay draw (logged to TensorBoard)."""
        return dict(getattr(self, "_diag", {}))

    def summary(self) -> dict[str, float]:
        """Run-level means of the soft-label health figures (written to results.json)."""
        sums, n = getattr(self, "_diag_sum", {}), getattr(self, "_diag_n", 0)
        out = {k: v / n for k, v in sums.items()} if n else {}
        out["collapse_warnings"] = getattr(self, "_collapse_warnings", 0)
        if self.warn_flips:
            out["relabel_warnings"] = getattr(self, "_relabel_warnings", 0)
        return out

    @contextlib.contextmanager
    def unrecorded(self) -> Iterator[None]:
        """Targets asked for inside stay out of the health figures (for diagnostics that draw their own samples)."""
        self._unrecorded = True
        try:
            yield
        finally:
            self._unrecorded = False

    def _record(self, probs: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        """Soft-label health (entropy, mass on the true class, argmax flips); returns ``probs`` detached."""
        p = probs.detach()
        if getattr(self, "_unrecorded", False):
            return p
        true_p = p.gather(1, y[:, None]).squeeze(1)
        # read together: one device sync per step, not one per figure. A flip is another class holding strictly
        # more mass than the true one: ddn.label_mix=0.5 saturates at a 50/50 tie, which argmax would count as a
        # flip whenever the other class has the lower index
        entropy, max_entropy, true_mass, flips = torch.stack([
            -(p * p.clamp_min(1e-12).log()).sum(1).mean(),
            torch.log(ctx.seen_classes.sum().clamp_min(1).float()),
            true_p.mean(),
            (p.amax(1) > true_p).float().mean(),
        ]).tolist()
        self._diag = {
            "entropy": entropy,
            "entropy_ratio": entropy / max_entropy if max_entropy > 0 else 0.0,
            "true_class_mass": true_mass,
            "argmax_flip_share": flips,
        }
        self._diag_sum = {k: getattr(self, "_diag_sum", {}).get(k, 0.0) + v for k, v in self._diag.items()}
        self._diag_n = getattr(self, "_diag_n", 0) + 1
        if max_entropy > 0 and entropy > COLLAPSE_RATIO * max_entropy:
            self._collapse_warnings = getattr(self, "_collapse_warnings", 0) + 1
            if self._collapse_warnings in (1, 10, 100, 1000):
                log.warning("LABEL COLLAPSE: soft-label entropy %.3f is %.0f%% of log(C)=%.3f at task %d "
                            "(%d times so far): the labels carry almost no class information; lower ddn.lr "
                            "or alpha", entropy, 100 * entropy / max_entropy, max_entropy, ctx.task,
                            self._collapse_warnings)
        flips = self._diag["argmax_flip_share"]
        if self.warn_flips and flips > FLIP_SHARE:
            # the other failure seen in practice: confident labels of the *wrong* class (low entropy)
            self._relabel_warnings = getattr(self, "_relabel_warnings", 0) + 1
            if self._relabel_warnings in (1, 10, 100, 1000):
                log.warning("LABEL FLIPS: %.0f%% of the replayed samples' soft labels point to another class "
                            "at task %d (%d draws so far): the outer step is relabelling the buffer; try "
                            "ddn.old_to_old=true, a lower ddn.lr or alpha (enough on Split MNIST, not on "
                            "CIFAR-10: docs/method.md)", 100 * flips, ctx.task,
                            self._relabel_warnings)
        return p


class HardExtra(LabelPlugin):
    """Control: the extra alpha term on the *hard* labels (is a DDN gain just more buffer weight?)."""

    def targets(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        return self._record(F.one_hot(draw.y, len(ctx.seen_classes)).float(), draw.y, ctx)


class Smooth(LabelPlugin):
    """Uniform label smoothing over the classes seen so far: (1 - eps) one-hot + eps / n_seen."""

    def __init__(self, smoothing: float) -> None:
        super().__init__()
        self.smoothing = smoothing

    def targets(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        seen = ctx.seen_classes.float()
        uniform = seen / seen.sum()
        hard = F.one_hot(draw.y, len(seen)).float()
        return self._record((1 - self.smoothing) * hard + self.smoothing * uniform, draw.y, ctx)


class RandomLabels(LabelPlugin):
    """Control: fixed random soft labels per buffer slot (drawn once), restricted to seen classes."""

    def __init__(self, buffer_size: int, n_classes: int, seed: int, scale: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed + 4242)
        self.register_buffer("scores", scale * torch.randn(buffer_size, n_classes, generator=g))

    def targets(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        return self._record(restrict_to_seen(self.scores[draw.slots], ctx.seen_classes[None]), draw.y, ctx)
