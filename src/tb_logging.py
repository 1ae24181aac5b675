"""TensorBoard output of a run: per-task accuracies, averages, the accuracy matrix as a heat-map, hparams."""
from __future__ import annotations

from typing import Any

import numpy as np


def accuracy_heatmap(R: np.ndarray, title: str):
    """A matplotlib figure of the accuracy matrix (rows: after task t, columns: task i)."""
    from matplotlib.figure import Figure  # not pyplot: no global backend switch (notebooks keep theirs)

    n = len(R)
    fig = Figure(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n))
    ax = fig.subplots()
    im = ax.imshow(np.nan_to_num(R, nan=0.0), vmin=0, vmax=100, cmap="viridis")
    for t in range(n):
        for i in range(n):
            if not np.isnan(R[t, i]):
                ax.text(i, t, f"{R[t, i]:.0f}", ha="center", va="center",
                        color="white" if R[t, i] < 60 else "black", fontsize=8)
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("after training task")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def log_task_end(logger: Any, task: int, model_name: str, cil: list[float], til: list[float],
                 summary_cil: dict[str, float], summary_til: dict[str, float]) -> None:
    """Scalars after task ``task`` with the task index as the step."""
    if logger is None:
        return
    exp = logger.experiment
    prefix = "eval" if model_name == "net" else f"eval_{model_name}"
    for i, (a, b) in enumerate(zip(cil, til)):
        exp.add_scalar(f"{prefix}/class_il_task{i}", a, task)
        exp.add_scalar(f"{prefix}/task_il_task{i}", b, task)
    for k, v in summary_cil.items():
        exp.add_scalar(f"{prefix}/class_il_{k}", v, task)
    for k, v in summary_til.items():
        exp.add_scalar(f"{prefix}/task_il_{k}", v, task)


def log_run_end(logger: Any, R_cil: np.ndarray, R_til: np.ndarray, hparams: dict[str, Any],
                final: dict[str, float]) -> None:
    if logger is None:
        return
    exp = logger.experiment
    for name, R in (("class_il", R_cil), ("task_il", R_til)):
        fig = accuracy_heatmap(R, f"{name} accuracy (%)")
        exp.add_figure(f"accuracy_matrix/{name}", fig, global_step=len(R) - 1)
    logger.log_hyperparams(hparams, {f"hparams/{k}": v for k, v in final.items()})
    logger.finalize("success")
