"""Test-set evaluation after each task: class-IL and task-IL accuracy from the same forward pass."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from src.data.stream import TaskStream
from src.distributed import rank_world


def masked_predictions(logits: Tensor, seen_classes: int, task_classes: range) -> tuple[Tensor, Tensor]:
    """Class-IL: argmax over classes seen so far. Task-IL: argmax within the sample's task's classes."""
    cil = logits[:, :seen_classes].argmax(1)
    til = logits[:, task_classes.start:task_classes.stop].argmax(1) + task_classes.start
    return cil, til


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_tasks(model: nn.Module, preprocess: nn.Module, stream: TaskStream, upto_task: int,
                   device: torch.device, batch_size: int = 500) -> tuple[list[float], list[float]]:
    """Per-task test accuracy (%) on tasks 0..upto_task, as (class_il, task_il)."""
    seen = stream.task_classes(upto_task).stop
    rank, world = rank_world()
    cil_acc, til_acc = [], []
    with eval_mode(model):
        for t in range(upto_task + 1):
            x, y = stream.test_set(t)
            n = max(len(y), 1)
            x, y = x[rank::world], y[rank::world]  # each rank a shard; the counts are summed below
            correct = torch.zeros(2, dtype=torch.long, device=device)
            for start in range(0, len(y), batch_size):
                logits = model(preprocess(x[start:start + batch_size].to(device)))
                cil, til = masked_predictions(logits, seen, stream.task_classes(t))
                yb = y[start:start + batch_size].to(device)
                correct += torch.stack([(cil == yb).sum(), (til == yb).sum()])
            if world > 1:
                torch.distributed.all_reduce(correct)
            cil_acc.append(100.0 * correct[0].item() / n)
            til_acc.append(100.0 * correct[1].item() / n)
    return cil_acc, til_acc


@torch.no_grad()
def per_class_accuracy(model: nn.Module, preprocess: nn.Module, stream: TaskStream, upto_task: int,
                       device: torch.device, batch_size: int = 500) -> list[float]:
    """Class-IL test accuracy (%) of every class of tasks 0..upto_task (argmax over all of them)."""
    seen = stream.task_classes(upto_task).stop
    rank, world = rank_world()
    mask = stream.test_y < seen
    x, y = stream.test_x[mask][rank::world], stream.test_y[mask][rank::world]
    correct = torch.zeros(seen, dtype=torch.long, device=device)
    total = torch.zeros(seen, dtype=torch.long, device=device)
    with eval_mode(model):
        for start in range(0, len(y), batch_size):
            yb = y[start:start + batch_size].to(device)
            pred = model(preprocess(x[start:start + batch_size].to(device)))[:, :seen].argmax(1)
            correct += torch.bincount(yb[pred == yb], minlength=seen)
            total += torch.bincount(yb, minlength=seen)
    if world > 1:
        torch.distributed.all_reduce(correct)
        torch.distributed.all_reduce(total)
    return (100.0 * correct / total.clamp(min=1)).tolist()
