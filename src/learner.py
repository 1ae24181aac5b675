"""The LightningModule: one manual-optimisation training step shared by every method and label plug-in.

Per step: preprocess the stream batch, draw from the buffer, (DDN: outer step on the label network),
forward, method loss (+ alpha * soft-label CE on the replay draw), one optimiser step, method hook
(CLS-ER EMA), reservoir insertion of the non-augmented stream samples with their pre-update logits.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from src.buffer import ReservoirBuffer
from src.checkpoint import Position
from src.data.transforms import BatchPreprocess
from src.methods.base import Method, StepBatch, StepContext
from src.models.backbones import Classifier
from src.plugins.labels import LabelPlugin, soft_cross_entropy


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, task: int, step: int, loss: float) -> None:
        super().__init__(f"loss is {loss} at task {task}, step {step}: the run diverged "
                         "(lower the learning rate, e.g. optimizer.lr, or alpha)")
        self.task, self.step = task, step


class ContinualLearner(pl.LightningModule):
    """Trains ``net`` with ``method`` on the stream, replaying from ``buffer``; see the module docstring."""

    def __init__(self, net: Classifier, method: Method, buffer: ReservoirBuffer | None,
                 preprocess: BatchPreprocess, optimizer: Callable[..., torch.optim.Optimizer],
                 buffer_batch_size: int, augment: bool, augment_buffer: bool, concat_forward: bool,
                 seed: int, labels: LabelPlugin | None = None, alpha: float = 0.0,
                 log_every_n_steps: int = 50) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net, self.method, self.buffer, self.preprocess = net, method, buffer, preprocess
        self.labels, self.alpha = labels, alpha
        self.optimizer_factory = optimizer
        self.buffer_batch_size = buffer_batch_size
        self.augment, self.augment_buffer, self.concat_forward = augment, augment_buffer, concat_forward
        self.log_every_n_steps = log_every_n_steps
        n_classes = net.head.out_features
        self.register_buffer("current_task", torch.zeros((), dtype=torch.long))
        self.register_buffer("seen_classes", torch.zeros(n_classes, dtype=torch.bool))
        self.register_buffer("total_steps", torch.zeros((), dtype=torch.long))
        self.aug_generator = torch.Generator().manual_seed(seed * 7 + 1)
        self.timings: dict[str, float] = {"step": 0.0, "augment": 0.0, "outer": 0.0}
        self.samples_seen = 0
        # set by the task loop when a task continues from a checkpoint
        self.resume_offset = Position()
        self.batches_per_epoch = 0
        self.pending_optimizer_state: dict | None = None

    # the augmentation generator is part of the run's future: checkpoint it with the module
    def get_extra_state(self) -> dict:
        return {"aug_generator": self.aug_generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.aug_generator.set_state(state["aug_generator"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # a Trainer per task calls this at every task start: the optimiser is re-created (mammoth)
        return self.optimizer_factory(self.net.parameters())

    def on_train_start(self) -> None:
        if self.pending_optimizer_state is not None:  # resumed mid-task: the optimiser continues too
            self.optimizers().optimizer.load_state_dict(self.pending_optimizer_state)
            self.pending_optimizer_state = None

    @property
    def lr(self) -> float:
        """The classifier's SGD step size (the configured one: no scheduler changes it)."""
        keywords = getattr(self.optimizer_factory, "keywords", {})
        return float(keywords["lr"]) if "lr" in keywords else float(self.optimizers().param_groups[0]["lr"])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def start_task(self, task: int) -> None:
        self.current_task.fill_(task)

    def context(self) -> StepContext:
        return StepContext(task=int(self.current_task), seen_classes=self.seen_classes)

    # ----------------------------------------------------------------------------- batches
    def _prep(self, x: Tensor, augment: bool) -> Tensor:
        return self.preprocess(x, augment=augment, generator=self.aug_generator)

    def draw_replay(self, n_draws: int) -> list[StepBatch]:
        """``n_draws`` independent buffer draws (empty list while the buffer is empty)."""
        if self.buffer is None or self.buffer.is_empty or n_draws == 0:
            return []
        draws = []
        for _ in range(n_draws):
            d = self.buffer.sample(self.buffer_batch_size)
            x = self._prep(d.x, augment=self.augment and self.augment_buffer)
            draws.append(StepBatch(x, d.y, d.task, d.logits, d.slots))
        return draws

    def batched(self, fn: Callable[[Tensor], Tensor], xs: list[Tensor]) -> list[Tensor]:
        """``fn`` on several batches: one concatenated forward or one per batch (``concat_forward``)."""
        if self.concat_forward and len(xs) > 1:
            return list(fn(torch.cat(xs)).split([len(x) for x in xs]))
        return [fn(x) for x in xs]

    # ----------------------------------------------------------------------------- loss
    def inner_loss(self, logits: list[Tensor], stream: StepBatch, draws: list[StepBatch], ctx: StepContext,
                   soft_targets: Tensor | None) -> dict[str, Tensor]:
        """The method's loss terms plus, when a label plug-in is on, alpha * soft CE on its replay draw."""
        terms = self.method.loss(logits[0], logits[1:], stream, draws, ctx)
        if soft_targets is not None:
            terms["soft"] = self.alpha * soft_cross_entropy(logits[1 + self.method.label_draw], soft_targets)
        return terms

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        t_start = time.perf_counter()
        x_raw, y, task = batch
        self.seen_classes[y] = True
        ctx = self.context()
        stream = StepBatch(self._prep(x_raw, augment=self.augment), y, task)
        draws = self.draw_replay(self.method.num_draws)
        self.timings["augment"] += time.perf_counter() - t_start

        feats = self.batched(self.net.features, [stream.x, *(d.x for d in draws)])
        use_labels = self.labels is not None and len(draws) > 0
        if use_labels:
            # the outer step reuses these features (detached): at the same theta they are what a
            # head-scope virtual step needs, so DDN adds no second forward of the step's batches
            t_outer = time.perf_counter()
            self.labels.maybe_outer_step(self, stream, draws, ctx, int(self.total_steps),
                                         [f.detach() for f in feats])
            self.timings["outer"] += time.perf_counter() - t_outer
        logits = [self.net.head(f) for f in feats]
        soft = None
        if use_labels:
            label_draw = draws[self.method.label_draw]
            soft = self.labels.targets(feats[1 + self.method.label_draw].detach(), label_draw, ctx)
        terms = self.inner_loss(logits, stream, draws, ctx, soft)
        loss = sum(terms.values())

        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise DivergenceError(int(self.current_task), int(self.total_steps), loss_value)
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.method.after_step(self.net, int(self.total_steps))

        if self.buffer is not None:
            slots = self.buffer.add(x_raw, y, task, logits=logits[0].detach())
            if self.labels is not None:
                self.labels.on_insert(slots, y)
        self.total_steps += 1
        self.samples_seen += len(y)
        self.timings["step"] += time.perf_counter() - t_start
        self._log_step(terms, loss_value)

    def _log_step(self, terms: dict[str, Tensor], total: float) -> None:
        step = int(self.total_steps)
        if self.logger is None or step % self.log_every_n_steps:
            return
        # the loss terms are read (a device sync each) only on logging steps
        exp = self.logger.experiment
        for name, value in terms.items():
            exp.add_scalar(f"train/loss_{name}", float(value.detach()), step)
        exp.add_scalar("train/loss_total", total, step)
        if self.timings["step"] > 0:
            exp.add_scalar("train/samples_per_s", self.samples_seen / self.timings["step"], step)
        if self.labels is not None:
            for name, value in self.labels.diagnostics().items():
                exp.add_scalar(f"labels/{name}", value, step)

