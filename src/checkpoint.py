"""Checkpoints a killed run resumes from exactly: written atomically at every task end and every N steps.

A checkpoint holds everything the run's future depends on: the learner's state dict (network, reservoir
buffer with its generator, label plug-in with its optimiser / EMA / generator, CLS-ER's EMA models,
the augmentation generator), the classifier optimiser, the accuracy matrices so far, the position in
the stream (task, epoch, next batch), counters and timings, the gradient-alignment record (its checks so
far and its generator), and the global RNG states. It loads with ``torch.load(weights_only=True)``: no
pickled code.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from src.distributed import rank_world
from src.results import RUN_NEUTRAL_KEYS, config_differences

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


@dataclass
class Position:
    """Where the stream continues: ``task``, ``epoch`` within the task, ``batch`` = next batch index."""

    task: int = 0
    epoch: int = 0
    batch: int = 0


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
            "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2])}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write then rename: a kill during the write never leaves a broken ``last.ckpt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(run_dir: str | Path, name: str = LAST) -> dict[str, Any]:
    """A run folder's checkpoint ``name`` (``last.ckpt``, or a ``task<t>.ckpt`` of ``checkpoint.keep_task_ends``)."""
    path = Path(run_dir) / CHECKPOINT_DIR / name
    if not path.is_file():
        from src.config_check import ConfigError

        raise ConfigError(f"resume={run_dir} has no {CHECKPOINT_DIR}/{name}: point resume at a run folder "
                                "that wrote checkpoints (checkpoint.every_n_steps / task ends)")
    return torch.load(path, weights_only=True, map_location="cpu")


def resume_config(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, dict[str, Any]]:
    """The saved config of ``cfg.resume``; refuses command-line overrides that change it."""
    ckpt = load(cfg.resume)
    saved = OmegaConf.create(ckpt["config"])
    current = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    diffs = []
    for ov in overrides:
        key = ov.lstrip("+~").split("=", 1)[0]
        if key.startswith("hydra.") or key in RUN_NEUTRAL_KEYS:
            continue
        old, new = OmegaConf.select(saved, key), OmegaConf.select(current, key)
        if old != new:
            diffs.append(f"{key}: saved {OmegaConf.to_container(old) if OmegaConf.is_config(old) else old!r}"
                         f" -> now {OmegaConf.to_container(new) if OmegaConf.is_config(new) else new!r}")
    if diffs:
        from src.config_check import ConfigError

        raise ConfigError(f"resume={cfg.resume} was run with a different config; drop these overrides or start a "
                          f"new run: {'; '.join(diffs)}")
    saved.resume = str(cfg.resume)
    saved.output_dir = str(cfg.resume)
    return saved, ckpt


def load_unfinished(cfg: DictConfig) -> dict[str, Any] | None:
    """The last checkpoint in ``cfg.output_dir`` if a killed run left one (None if there is none), after
    checking it was written with this same config: how a rerun benchmark suite continues an unfinished run
    instead of starting it over."""
    if not (Path(cfg.output_dir) / CHECKPOINT_DIR / LAST).is_file():
        return None
    ckpt = load(cfg.output_dir)
    diffs = config_differences(ckpt["config"], OmegaConf.to_container(cfg, resolve=True))
    if diffs:
        from src.config_check import ConfigError

        raise ConfigError(f"{cfg.output_dir} holds an unfinished run with a different config ({', '.join(diffs)}): "
                          "delete that folder to start it over, or rerun with the config it was started with")
    return ckpt


class Checkpointer(pl.Callback):
    """Saves ``last.ckpt`` every ``every_n_steps`` training steps (0: only at task ends) and at task ends;
    with ``keep_task_ends`` also ``task<t>.ckpt`` after each task t, which later saves do not overwrite."""

    def __init__(self, run_dir: Path, every_n_steps: int, config: dict[str, Any], enabled: bool = True,
                 keep_task_ends: bool = False) -> None:
        self.path = run_dir / CHECKPOINT_DIR / LAST
        self.every, self.config, self.enabled, self.keep_task_ends = every_n_steps, config, enabled, keep_task_ends
        self.snapshot_extra: Any = None  # set by the task loop: returns the run record's state
        self.snapshot_diagnostics: Any = None  # set by train: returns the gradient-alignment record's state

    def save(self, learner, position: Position, optimizer_state: dict | None = None,
             task_end: int | None = None) -> None:
        """Write ``last.ckpt``; ``task_end``: the task that just ended (kept apart with ``keep_task_ends``)."""
        # the rank is read here, not at construction: DDP processes join their group at the first fit
        if not self.enabled or rank_world()[0] != 0:
            return
        payload = {
            "config": self.config,
            "learner": learner.state_dict(),
            "optimizer": optimizer_state,
            "position": [position.task, position.epoch, position.batch],
            "counters": {"samples_seen": learner.samples_seen, "timings": dict(learner.timings)},
            "record": self.snapshot_extra() if self.snapshot_extra else None,
            "diagnostics": self.snapshot_diagnostics() if self.snapshot_diagnostics else None,
            "rng": rng_state(),
        }
        save_atomic(payload, self.path)
        if self.keep_task_ends and task_end is not None:
            save_atomic(payload, self.path.with_name(f"task{task_end}.ckpt"))
        # a small readable sidecar: where the last checkpoint stands (also what the kill test polls)
        info = self.path.with_suffix(".json")
        tmp = info.with_suffix(f".json.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"task": position.task, "epoch": position.epoch, "batch": position.batch,
                                   "step": int(learner.total_steps)}))
        os.replace(tmp, info)

    def on_train_batch_end(self, trainer, learner, outputs, batch, batch_idx) -> None:
        if self.every <= 0 or int(learner.total_steps) % self.every:
            return
        epoch = learner.resume_offset.epoch + trainer.current_epoch
        done = batch_idx + 1 + (learner.resume_offset.batch if trainer.current_epoch == 0 else 0)
        if done >= learner.batches_per_epoch:
            epoch, done = epoch + 1, 0
        self.save(learner, Position(int(learner.current_task), epoch, done),
                  trainer.optimizers[0].state_dict())
