"""The task loop: a fresh Trainer per task (a reused Trainer trains 0 steps on a second ``fit``),
evaluation on tasks 0..t after each task, the accuracy matrices, TensorBoard output."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch

from src import metrics
from src.checkpoint import Checkpointer, Position
from src.data.stream import TaskStream
from src.evaluation import evaluate_tasks
from src.learner import ContinualLearner, DivergenceError
from src.tb_logging import log_task_end


@dataclass
class RunRecord:
    """Accuracy matrices per evaluated model (``net`` first, e.g. CLS-ER adds ``plastic``/``stable``)."""

    class_il: dict[str, np.ndarray]
    task_il: dict[str, np.ndarray]
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    status: str = "completed"
    error: str | None = None

    @property
    def reported(self) -> str:
        return next(iter(self.class_il))


    def state(self) -> dict:
        """The record as tensors and numbers (what a checkpoint stores)."""
        return {"class_il": {k: torch.from_numpy(v) for k, v in self.class_il.items()},
                "task_il": {k: torch.from_numpy(v) for k, v in self.task_il.items()},
                "names": list(self.class_il), "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds}

    @classmethod
    def from_state(cls, state: dict) -> RunRecord:
        names = state["names"]  # dicts keep the reported model first
        return cls({n: state["class_il"][n].numpy().copy() for n in names},
                   {n: state["task_il"][n].numpy().copy() for n in names},
                   state["train_seconds"], state["eval_seconds"])


def run_tasks(learner: ContinualLearner, stream: TaskStream, make_trainer: Callable[[int], pl.Trainer],
              epochs: int, logger=None, joint: bool = False, checkpointer: Checkpointer | None = None,
              start: Position | None = None, rec: RunRecord | None = None) -> RunRecord:
    """Train task by task (or once on all data when ``joint``), evaluating after each task.

    ``start`` / ``rec``: continue a resumed run from its checkpoint's position and record.
    """
    T = stream.n_tasks
    names = list(learner.method.eval_models(learner.net))
    if rec is None:
        rec = RunRecord({n: metrics.new_matrix(T) for n in names}, {n: metrics.new_matrix(T) for n in names})
    start = start or Position()
    if checkpointer is not None:
        checkpointer.snapshot_extra = rec.state
    tasks = [T - 1] if joint else range(T)
    for t in tasks:
        if t < start.task:
            continue
        e0, b0 = (start.epoch, start.batch) if t == start.task else (0, 0)
        stream.set_task(t, joint=joint, start_epoch=e0, skip_batches=b0)
        learner.start_task(t)
        learner.resume_offset = Position(t, e0, b0)
        learner.batches_per_epoch = stream.batches_per_epoch()
        t0 = time.perf_counter()
        try:
            if e0 < epochs:
                make_trainer(epochs - e0).fit(learner, datamodule=stream)
        except DivergenceError as err:  # keep the matrices of the tasks that finished before
            rec.status, rec.error = "diverged", str(err)
            return rec
        finally:
            rec.train_seconds += time.perf_counter() - t0
        if learner.labels is not None:
            learner.labels.end_task(learner, stream, t)
        t0 = time.perf_counter()
        for name, model in learner.method.eval_models(learner.net).items():
            cil, til = evaluate_tasks(model, learner.preprocess, stream, t, learner.device)
            rec.class_il[name][t, : t + 1] = cil
            rec.task_il[name][t, : t + 1] = til
            log_task_end(logger, t, name, cil, til, metrics.summarise(rec.class_il[name], t),
                         metrics.summarise(rec.task_il[name], t))
        rec.eval_seconds += time.perf_counter() - t0
        if checkpointer is not None:
            checkpointer.save(learner, Position(t + 1, 0, 0), task_end=t)
    return rec
