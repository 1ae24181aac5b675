"""Continual-learning metrics on an accuracy matrix R, R[t][i] = accuracy (%) on task i after task t.

Rows are filled as tasks finish; entries for tasks not yet seen (i > t) are NaN.
"""
from __future__ import annotations

import numpy as np


def new_matrix(n_tasks: int) -> np.ndarray:
    return np.full((n_tasks, n_tasks), np.nan)


def average_accuracy(R: np.ndarray, t: int | None = None) -> float:
    """Unweighted mean of per-task accuracies after task t (default: the last filled row)."""
    t = last_row(R) if t is None else t
    return float(np.mean(R[t, : t + 1]))


def forgetting(R: np.ndarray, t: int | None = None) -> float:
    """Mean over old tasks i < t of (max over rows of R[.][i] - R[t][i]) (mammoth / ER-ACE definition)."""
    t = last_row(R) if t is None else t
    if t < 1:
        return 0.0
    best = np.nanmax(R[: t + 1, :t], axis=0)
    return float(np.mean(best - R[t, :t]))


def backward_transfer(R: np.ndarray, t: int | None = None) -> float:
    """BWT: mean over old tasks i < t of (R[t][i] - R[i][i])."""
    t = last_row(R) if t is None else t
    if t < 1:
        return 0.0
    return float(np.mean(R[t, :t] - np.diag(R)[:t]))


def last_row(R: np.ndarray) -> int:
    filled = [t for t in range(len(R)) if not np.isnan(R[t, 0])]
    if not filled:
        raise ValueError("accuracy matrix has no filled row yet")
    return filled[-1]


def summarise(R: np.ndarray, t: int | None = None) -> dict[str, float]:
    return {"acc": average_accuracy(R, t), "forgetting": forgetting(R, t), "bwt": backward_transfer(R, t)}
