"""Refuse bad input before any data is loaded or any folder written: one line naming key, value and fix."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from src.plugins.ddn import analytic_hypergrad_fix
from src.plugins.factory import LABEL_VARIANTS


class ConfigError(ValueError):
    """A config value is unusable; the message names the key, the bad value and the fix."""


def _fail(key: str, value: object, fix: str) -> None:
    raise ConfigError(f"{key}={value!r} is invalid: {fix}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_config(cfg: DictConfig) -> None:
    """Check the composed config; raises :class:`ConfigError` on the first bad value."""
    if not _is_int(cfg.buffer) or cfg.buffer < 0:
        _fail("buffer", cfg.buffer, "give the total number of buffer samples as an integer >= 0, e.g. buffer=200")
    if not _is_int(cfg.seed):
        _fail("seed", cfg.seed, "use an integer, e.g. seed=0")
    if cfg.alpha < 0:
        _fail("alpha", cfg.alpha, "the soft-label loss weight must be >= 0 (alpha=0 is the plain baseline)")
    if not 0 <= cfg.beta < 1:
        _fail("beta", cfg.beta, "the DDN EMA weight must lie in [0, 1), e.g. beta=0.9")
    if cfg.labels not in LABEL_VARIANTS:
        _fail("labels", cfg.labels, f"choose one of {', '.join(LABEL_VARIANTS)}")
    if not isinstance(cfg.dataset.imbalance_ratio, (int, float)) or cfg.dataset.imbalance_ratio < 1:
        _fail("dataset.imbalance_ratio", cfg.dataset.imbalance_ratio,
              "use a number >= 1 (1: balanced; 10: the rarest class of each task keeps a tenth of its samples)")
    if cfg.head not in ("linear", "cosine"):
        _fail("head", cfg.head, "choose linear or cosine")
    ddn = cfg.ddn
    if ddn.unroll_scope not in ("head", "full"):
        _fail("ddn.unroll_scope", ddn.unroll_scope, "choose head or full")
    if not _is_int(ddn.unroll_steps) or ddn.unroll_steps < 1:
        _fail("ddn.unroll_steps", ddn.unroll_steps, "use an integer >= 1 (1 = the paper's one-step unroll)")
    hypergrad = ddn.get("hypergrad", "autograd")
    if hypergrad not in ("autograd", "analytic"):
        _fail("ddn.hypergrad", hypergrad, "choose autograd or analytic")
    if hypergrad == "analytic" and (fix := analytic_hypergrad_fix(ddn.unroll_scope, ddn.unroll_steps)):
        _fail("ddn.hypergrad", hypergrad, fix)
    if not _is_int(ddn.every) or ddn.every < 1:
        _fail("ddn.every", ddn.every, "use an integer >= 1 (outer step every N inner steps)")
    if not _is_int(ddn.boundary_iters) or ddn.boundary_iters < 0:
        _fail("ddn.boundary_iters", ddn.boundary_iters, "use an integer >= 0 (0: no distillation at task ends)")
    if cfg.labels in ("ddn", "l2y") and not ddn.per_step and ddn.boundary_iters == 0:
        _fail("ddn.per_step", False, "with ddn.boundary_iters=0 the labels would never be trained: set "
              "ddn.boundary_iters>0 or ddn.per_step=true")
    if ddn.val_balanced and cfg.buffer < cfg.dataset.n_classes:
        _fail("buffer", cfg.buffer, f"ddn.val_balanced needs at least one sample per class: use "
              f"buffer>={cfg.dataset.n_classes} or ddn.val_balanced=false")
    if not 0 < ddn.label_mix <= 1:
        _fail("ddn.label_mix", ddn.label_mix, "use a share in (0, 1]: 1 = the paper's free soft label, "
              "smaller keeps at least 1 - label_mix of the mass on the true class")
    if ddn.lr <= 0:
        _fail("ddn.lr", ddn.lr, "the DDN (outer) learning rate must be > 0")
    if ddn.val_source not in ("stream_buffer", "heldout_buffer"):
        _fail("ddn.val_source", ddn.val_source, "choose stream_buffer or heldout_buffer")
    for key in ("old_to_old", "own_task", "center_hypergrad", "val_balanced", "first_order", "per_step",
                "input_norm", "class_input"):
        if not isinstance(ddn.get(key, False), bool):
            _fail(f"ddn.{key}", ddn.get(key), "use true or false")
    if ddn.input not in ("features", "image"):
        _fail("ddn.input", ddn.input, "choose features or image")
    if cfg.optimizer.lr <= 0:
        _fail("optimizer.lr", cfg.optimizer.lr, "the learning rate must be > 0, e.g. optimizer.lr=0.1")
    s = cfg.setting
    for key in ("batch_size", "buffer_batch_size", "epochs"):
        if not _is_int(s[key]) or s[key] <= 0:
            _fail(f"setting.{key}", s[key], "use an integer > 0")
    ds = cfg.dataset
    if not _is_int(ds.classes_per_task) or ds.classes_per_task <= 0 or ds.n_classes % ds.classes_per_task:
        _fail("dataset.classes_per_task", ds.classes_per_task,
              f"it must divide dataset.n_classes={ds.n_classes} (e.g. 2 for 10 classes)")
    replay = cfg.baseline.get("replay", True)
    if replay and cfg.buffer == 0:
        _fail("buffer", 0, f"baseline={cfg.baseline.name} replays from a buffer: use buffer>0 or baseline=finetune")
    if cfg.labels not in ("hard",) and not replay:
        _fail("labels", cfg.labels, f"baseline={cfg.baseline.name} has no buffer to label: use labels=hard")
    root = ds.get("root")
    if root is not None and not ds.get("download", False) and not Path(root).exists():
        _fail("dataset.root", root, "the folder does not exist: extract the data there "
              "(see README, Datasets) or set dataset.download=true where the network allows")
    _check_devices(cfg)


def _check_devices(cfg: DictConfig) -> None:
    import torch

    t = cfg.trainer
    accel = t.get("accelerator", "cpu")
    devices = t.get("devices", 1)
    if accel in ("gpu", "cuda"):
        have = torch.cuda.device_count()
        want = have if devices in (-1, "auto") else int(devices)
        if have == 0:
            _fail("trainer", "gpu", "no CUDA device is visible: use trainer=cpu")
        if want > have:
            _fail("trainer.devices", devices, f"only {have} GPU(s) visible: use trainer.devices<={have}")
