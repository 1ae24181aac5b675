"""The task stream: splits a decoded dataset into class-incremental tasks and serves one task at a time."""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from src.data.imbalance import long_tail_indices
from src.data.sources import DecodedDataset
from src.distributed import rank_world


class _IndexedTensors(Dataset):
    """Indexing with a whole list of indices at once: one gather per batch instead of a Python collate."""

    def __init__(self, x: Tensor, y: Tensor, task: Tensor) -> None:
        self.x, self.y, self.task = x, y, task

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        index = torch.as_tensor(idx)
        return self.x[index], self.y[index], self.task[index]


class TaskBatchSampler:
    """Shuffled batches over one task's indices; the order depends only on (seed, epoch), and each
    distributed rank takes its own stride of the permutation."""

    def __init__(self, indices: Tensor, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 start_epoch: int = 0, skip_batches: int = 0) -> None:
        self.indices, self.batch_size, self.seed = indices, batch_size, seed
        self.rank, self.world, self.epoch = rank, world, start_epoch
        self.skip = skip_batches  # resume inside an epoch: its first batches were already trained on

    def _order(self) -> Tensor:
        g = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        return self.indices[torch.randperm(len(self.indices), generator=g)][self.rank::self.world]

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order().tolist()
        self.epoch += 1
        skip, self.skip = self.skip, 0
        for start in range(skip * self.batch_size, len(order), self.batch_size):
            yield order[start:start + self.batch_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.indices), self.world))
        return (n + self.batch_size - 1) // self.batch_size


class TimedLoader:
    """Iterates a DataLoader and adds the seconds spent fetching batches to ``timer['load']``."""

    def __init__(self, loader: DataLoader, timer: dict[str, float]) -> None:
        self.loader, self.timer = loader, timer

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        it = iter(self.loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self.timer["load"] += time.perf_counter() - t0
            yield batch


class TaskStream(pl.LightningDataModule):
    """Class-incremental split of a dataset: task t holds classes [t*cpt, (t+1)*cpt) after reordering.

    Labels are remapped so that ``class_order[k]`` becomes class k; the task of a sample follows from
    its remapped label. ``set_task(t)`` picks the task whose train stream ``train_dataloader`` serves.
    """

    def __init__(self, data: DecodedDataset, classes_per_task: int, batch_size: int, seed: int,
                 class_order: Sequence[int] | None = None, imbalance_ratio: float = 1.0,
                 imbalance_seed: int = 0) -> None:
        super().__init__()
        n_classes = len(data.classes)
        order = torch.as_tensor(list(class_order) if class_order is not None else range(n_classes))
        remap = torch.empty(n_classes, dtype=torch.long)
        remap[order] = torch.arange(n_classes)
        self.classes = [data.classes[i] for i in order.tolist()]
        self.classes_per_task = classes_per_task
        self.n_tasks = n_classes // classes_per_task
        self.batch_size, self.seed = batch_size, seed
        self.train_x, self.train_y = data.train_x, remap[data.train_y]
        if imbalance_ratio != 1:  # long-tailed tasks (src/data/imbalance.py); the test set stays balanced
            keep = long_tail_indices(self.train_y, classes_per_task, imbalance_ratio, imbalance_seed)
            self.train_x, self.train_y = self.train_x[keep], self.train_y[keep]
        self.train_counts = torch.bincount(self.train_y, minlength=n_classes)
        self.test_x, self.test_y = data.test_x, remap[data.test_y]
        self.train_task = self.train_y // classes_per_task
        self.test_task = self.test_y // classes_per_task
        self.task = 0
        self.joint = False
        self.start_epoch = self.skip_batches = 0
        self.timer = {"load": 0.0}

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def set_task(self, task: int, joint: bool = False, start_epoch: int = 0, skip_batches: int = 0) -> None:
        """Serve task ``task``; with ``joint`` serve every task's data at once (the upper bound).
        ``start_epoch`` / ``skip_batches``: continue a resumed task where its checkpoint left it."""
        self.task, self.joint = task, joint
        self.start_epoch, self.skip_batches = start_epoch, skip_batches

    def train_indices(self, task: int) -> Tensor:
        return torch.nonzero(self.train_task == task).flatten()

    def train_dataloader(self) -> DataLoader:
        idx = torch.arange(len(self.train_y)) if self.joint else self.train_indices(self.task)
        rank, world = rank_world()
        sampler = TaskBatchSampler(idx, self.batch_size, seed=self.seed * 1009 + self.task, rank=rank, world=world,
                                   start_epoch=self.start_epoch, skip_batches=self.skip_batches)
        loader = DataLoader(_IndexedTensors(self.train_x, self.train_y, self.train_task), sampler=sampler,
                            batch_size=None, num_workers=0)
        return TimedLoader(loader, self.timer)

    def batches_per_epoch(self) -> int:
        return len(self.train_dataloader())

    def test_set(self, task: int) -> tuple[Tensor, Tensor]:
        mask = self.test_task == task
        return self.test_x[mask], self.test_y[mask]

    def task_classes(self, task: int) -> range:
        return range(task * self.classes_per_task, (task + 1) * self.classes_per_task)
