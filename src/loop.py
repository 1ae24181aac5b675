"""The task loop: a fresh Trainer per task (a reused Trainer trains 0 steps on a second ``fit``),
evaluation on tasks 0..t after each task, the accuracy matrices, TensorBoard output."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl

from src import metrics
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


def run_tasks(learner: ContinualLearner, stream: TaskStream, make_trainer: Callable[[int], pl.Trainer],
              epochs: int, logger=None, joint: bool = False) -> RunRecord:
    """Train task by task (or once on all data when ``joint``), evaluating after each task."""
    T = stream.n_tasks
    names = list(learner.method.eval_models(learner.net))
    rec = RunRecord({n: metrics.new_matrix(T) for n in names}, {n: metrics.new_matrix(T) for n in names})
    tasks = [T - 1] if joint else range(T)
    for t in tasks:
        stream.set_task(t, joint=joint)
        learner.start_task(t)
        t0 = time.perf_counter()
        try:
            make_trainer(epochs).fit(learner, datamodule=stream)
        except DivergenceError as err:  # keep the matrices of the tasks that finished before
            rec.status, rec.error = "diverged", str(err)
            return rec
        finally:
            rec.train_seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        for name, model in learner.method.eval_models(learner.net).items():
            cil, til = evaluate_tasks(model, learner.preprocess, stream, t, learner.device)
            rec.class_il[name][t, : t + 1] = cil
            rec.task_il[name][t, : t + 1] = til
            log_task_end(logger, t, name, cil, til, metrics.summarise(rec.class_il[name], t),
                         metrics.summarise(rec.task_il[name], t))
        rec.eval_seconds += time.perf_counter() - t0
    return rec
