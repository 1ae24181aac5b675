"""Long-tailed tasks: keep a seeded, exponentially decaying share of each task's classes.

Within a task of k classes, a seeded permutation ranks the classes 0..k-1; the class of rank r keeps
round(n * ratio ** (-r / (k - 1))) of its n training samples (at least 1), chosen by a seeded shuffle. The
commonest class keeps everything, the rarest 1/ratio of it (the profile of CIFAR-LT, per task). Test sets
stay balanced, so per-class test accuracy says which classes a method forgets or never learns.
"""
from __future__ import annotations

import torch
from torch import Tensor


def class_ranks(n_classes: int, classes_per_task: int, seed: int) -> Tensor:
    """Rank of each class inside its task (0 = commonest, classes_per_task - 1 = rarest)."""
    g = torch.Generator().manual_seed(seed)
    ranks = torch.empty(n_classes, dtype=torch.long)
    for start in range(0, n_classes, classes_per_task):
        ranks[start:start + classes_per_task] = torch.randperm(classes_per_task, generator=g)
    return ranks


def long_tail_indices(y: Tensor, classes_per_task: int, ratio: float, seed: int) -> Tensor:
    """Sorted indices of the training samples kept under ``ratio`` (1 keeps all); ``y`` are task-ordered labels."""
    if ratio == 1 or classes_per_task == 1:
        return torch.arange(len(y))
    n_classes = int(y.max()) + 1
    ranks = class_ranks(n_classes, classes_per_task, seed)
    g = torch.Generator().manual_seed(seed + 1)
    kept = []
    for c in range(n_classes):
        idx = torch.nonzero(y == c).flatten()
        share = ratio ** (-float(ranks[c]) / (classes_per_task - 1))
        n_keep = max(1, round(len(idx) * share))
        kept.append(idx[torch.randperm(len(idx), generator=g)[:n_keep]])
    return torch.cat(kept).sort().values
