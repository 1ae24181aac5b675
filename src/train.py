"""Entry point: ``python -m src.train baseline=er buffer=200`` (Hydra). Returns the optimised metric."""
from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src import config_resolvers, metrics  # noqa: F401  (registers ${tuned:...})
from src.buffer import ReservoirBuffer
from src.config_check import ConfigError, validate_config
from src.data.imbalance import class_ranks
from src.data.sources import DataError
from src.diagnostics import GradientAlignment
from src.data.stream import TaskStream
from src.data.transforms import BatchPreprocess
from src.distributed import rank_world
from src.evaluation import per_class_accuracy
from src.learner import ContinualLearner
from src.checkpoint import Checkpointer, Position, resume_config, set_rng_state
from src.loop import RunRecord, run_tasks
from src.plugins.factory import build_label_plugin
from src.results import RESULTS_FILE, format_table, versions, write_json_atomic
from src.tb_logging import log_run_end

log = logging.getLogger("ddn_cl")


def quiet_lightning() -> None:
    """One Trainer per task would print its banner and tips five times: keep only warnings that matter."""
    import warnings

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*broadcast_buffers. is deprecated.*")


def build(cfg: DictConfig) -> tuple[TaskStream, ContinualLearner]:
    """Data stream and learner from the composed config (everything through ``instantiate``)."""
    try:
        data = instantiate(cfg.dataset.source)
    except InstantiationException as err:  # keep our one-line data errors one line
        raise (err.__cause__ if isinstance(err.__cause__, DataError) else err) from None
    ds = cfg.dataset
    if len(data.classes) != ds.n_classes:
        raise DataError(f"dataset.root={ds.get('root')} holds {len(data.classes)} classes but dataset.n_classes="
                        f"{ds.n_classes}: point dataset.root at the right data or fix dataset.n_classes")
    order = None
    if ds.class_order == "permute":
        order = torch.randperm(ds.n_classes, generator=torch.Generator().manual_seed(ds.class_order_seed)).tolist()
    elif ds.class_order != "fixed":
        order = list(ds.class_order)
    stream = TaskStream(data, ds.classes_per_task, cfg.setting.batch_size, seed=cfg.seed, class_order=order,
                        imbalance_ratio=ds.imbalance_ratio, imbalance_seed=ds.imbalance_seed)

    torch.manual_seed(cfg.seed)  # model init only: buffer, stream and augmentation have their own generators
    net = instantiate(ds.net, input_shape=stream.image_shape, num_classes=stream.n_classes, head=cfg.head)
    method = instantiate(cfg.baseline.method)
    method.setup(net)
    buffer = None
    if method.num_draws > 0:
        buffer = ReservoirBuffer(cfg.buffer, stream.image_shape, stream.n_classes, seed=cfg.seed)
    preprocess = BatchPreprocess(ds.mean, ds.std, crop_padding=ds.augment.crop_padding, flip=ds.augment.flip)
    labels = build_label_plugin(cfg, net, stream.n_classes, stream.image_shape)
    learner = ContinualLearner(
        net=net, method=method, buffer=buffer, preprocess=preprocess, optimizer=instantiate(cfg.optimizer),
        buffer_batch_size=cfg.setting.buffer_batch_size, augment=cfg.setting.augment,
        augment_buffer=cfg.setting.augment_buffer, concat_forward=cfg.setting.concat_forward, seed=cfg.seed,
        labels=labels, alpha=cfg.alpha, log_every_n_steps=cfg.log_every_n_steps,
    )
    return stream, learner


def _make_logger(cfg: DictConfig, out_dir: Path):
    if cfg.logger is None or not cfg.logger.get("_target_"):
        return None
    return instantiate(cfg.logger, save_dir=str(out_dir))


@dataclass
class RunOutput:
    """A finished run: its results payload and the objects that produced it (for notebooks and probes)."""

    payload: dict[str, Any]
    learner: ContinualLearner
    stream: TaskStream
    alignment: GradientAlignment


def train(cfg: DictConfig, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """One continual-learning run; writes ``results.json`` in ``cfg.output_dir`` and returns its payload.

    ``checkpoint``: a loaded ``last.ckpt`` of this run to continue from (see :mod:`src.checkpoint`).
    """
    return run(cfg, checkpoint).payload


def run(cfg: DictConfig, checkpoint: dict[str, Any] | None = None) -> RunOutput:
    """As :func:`train`, returning the trained learner, the stream and the gradient-alignment record too."""
    validate_config(cfg)
    quiet_lightning()
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    stream, learner = build(cfg)
    logger = _make_logger(cfg, out_dir)

    align = GradientAlignment(stream, cfg.diagnostics.align_every, cfg.diagnostics.align_samples, cfg.seed)
    checkpointer = Checkpointer(out_dir, cfg.checkpoint.every_n_steps, OmegaConf.to_container(cfg, resolve=True),
                                enabled=cfg.checkpoint.enabled, keep_task_ends=cfg.checkpoint.keep_task_ends)
    checkpointer.snapshot_diagnostics = align.state_dict
    start, rec = None, None
    if checkpoint is not None:
        start, rec = restore(learner, checkpoint)
        if checkpoint.get("diagnostics"):
            align.load_state_dict(checkpoint["diagnostics"])

    def make_trainer(epochs: int):
        # logger=False, not None: None would make Lightning create its own lightning_logs/ folder
        return instantiate(cfg.trainer, max_epochs=epochs, logger=logger if logger is not None else False,
                           callbacks=[align, checkpointer])

    rec = run_tasks(learner, stream, make_trainer, cfg.setting.epochs, logger=logger,
                    joint=bool(learner.method.trains_jointly), checkpointer=checkpointer, start=start, rec=rec)
    status, error = rec.status, rec.error
    if error:
        log.error(error)
        print(f"error: {error}", file=sys.stderr)
    learner.timings["load"] = stream.timer["load"]
    payload = _payload(cfg, rec, learner, status, error, time.time() - started)
    payload["per_class"] = _per_class(cfg, rec, learner, stream, payload["final"])
    payload["gradient_alignment"] = align.summary()
    payload["replicas"] = replica_check(learner)
    out = RunOutput(payload, learner, stream, align)
    if rank() != 0:  # one results file, one TensorBoard run, one table: rank 0's
        return out
    write_json_atomic(out_dir / RESULTS_FILE, payload)
    if status == "completed":
        name = rec.reported
        log_run_end(logger, rec.class_il[name], rec.task_il[name], _hparams(cfg), payload["final"])
        print(format_table(rec.class_il[name], rec.task_il[name], payload["final"],
                           f"{cfg.baseline.name} / labels={cfg.labels} / {cfg.dataset.name} / "
                           f"{cfg.setting.name} / buffer={cfg.buffer} / seed={cfg.seed}"))
        print(f"results: {out_dir / RESULTS_FILE}")
    return out


def restore(learner: ContinualLearner, ckpt: dict[str, Any]) -> tuple[Position, RunRecord | None]:
    """Put a checkpoint's state back; returns where the stream continues and the record so far."""
    learner.load_state_dict(ckpt["learner"])
    learner.samples_seen = ckpt["counters"]["samples_seen"]
    learner.timings.update(ckpt["counters"]["timings"])
    learner.pending_optimizer_state = ckpt["optimizer"]
    set_rng_state(ckpt["rng"])
    rec = RunRecord.from_state(ckpt["record"]) if ckpt["record"] else None
    return Position(*ckpt["position"]), rec


def rank() -> int:
    return rank_world()[0]


def replica_check(learner: ContinualLearner) -> dict[str, Any] | None:
    """Under DDP: fingerprints of the classifier and the label plug-in on every rank (they must agree)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return None

    def fingerprint(module: torch.nn.Module | None) -> list[float] | None:
        if module is None:
            return None
        flat = torch.cat([t.detach().double().flatten().cpu() for t in module.state_dict().values()
                          if torch.is_tensor(t) and t.is_floating_point()] or [torch.zeros(1, dtype=torch.double)])
        return [float(flat.sum()), float((flat * flat).sum())]

    # the label plug-in only: the reservoir buffer is rank-local by design (each rank its own shard)
    mine = {"net": fingerprint(learner.net), "labels": fingerprint(learner.labels)}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return {"world_size": len(gathered), "per_rank": gathered,
            "identical": all(g == gathered[0] for g in gathered)}


def _hparams(cfg: DictConfig) -> dict[str, Any]:
    return {"baseline": cfg.baseline.name, "dataset": cfg.dataset.name, "setting": cfg.setting.name,
            "buffer": cfg.buffer, "labels": cfg.labels, "alpha": cfg.alpha, "beta": cfg.beta, "seed": cfg.seed,
            "lr": cfg.optimizer.lr}


def _per_class(cfg: DictConfig, rec: RunRecord, learner: ContinualLearner, stream: TaskStream,
               final: dict[str, float]) -> dict[str, list] | None:
    """Final class-IL accuracy per class of the reported model, with each class's training-sample count, and
    ``final["rare_class_il"]``: the mean over the class of every task that ``dataset.imbalance_ratio`` makes the
    rarest (the same classes at ratio 1, so balanced runs are the reference)."""
    finished = np.nonzero(~np.isnan(rec.class_il[rec.reported][:, 0]))[0]
    if len(finished) == 0:
        return None
    last = int(finished[-1])
    model = learner.method.eval_models(learner.net)[rec.reported]
    acc = per_class_accuracy(model, learner.preprocess, stream, last, learner.device)
    counts = stream.train_counts[: len(acc)].tolist()
    ranks = class_ranks(stream.n_classes, stream.classes_per_task, cfg.dataset.imbalance_seed)
    rarest = [c for c in range(len(acc)) if ranks[c] == stream.classes_per_task - 1]
    final["rare_class_il"] = float(np.mean([acc[c] for c in rarest]))
    return {"class_il": acc, "train_count": counts, "classes": stream.classes[: len(acc)]}


def _payload(cfg: DictConfig, rec: RunRecord, learner: ContinualLearner, status: str,
             error: str | None, wall: float) -> dict[str, Any]:
    """results.json. A diverged run keeps the metrics after its last finished task (none if none)."""
    final: dict[str, float] = {}
    matrices: dict[str, Any] = {}
    if not np.isnan(rec.class_il[rec.reported][:, 0]).all():  # at least one task finished
        for name in rec.class_il:
            prefix = "" if name == rec.reported else f"{name}_"
            cil, til = metrics.summarise(rec.class_il[name]), metrics.summarise(rec.task_il[name])
            final.update({f"{prefix}class_il": cil["acc"], f"{prefix}task_il": til["acc"],
                          f"{prefix}forgetting": cil["forgetting"], f"{prefix}bwt": cil["bwt"],
                          f"{prefix}task_il_forgetting": til["forgetting"]})
            matrices[name] = {"class_il": rec.class_il[name], "task_il": rec.task_il[name]}
    timings = dict(learner.timings)
    return {
        "status": status,
        "error": error,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "final": final,
        "accuracy_matrices": matrices,
        "reported_model": rec.reported,
        "wall_clock_s": wall,
        "train_s": rec.train_seconds,
        "eval_s": rec.eval_seconds,
        "samples_seen": learner.samples_seen,
        "steps": int(learner.total_steps),
        "samples_per_s": learner.samples_seen / timings["step"] if timings["step"] > 0 else None,
        "step_timings_s": timings,
        # share of training time spent fetching + preprocessing/augmenting batches
        "data_share": (timings["load"] + timings["augment"]) / (timings["load"] + timings["step"])
        if timings["step"] > 0 else None,
        "label_diagnostics": learner.labels.summary() if learner.labels is not None else None,
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def optimized_value(cfg: DictConfig, payload: dict[str, Any]) -> float:
    """The metric a sweeper optimises (``optimized_metric`` names a key of ``final``)."""
    if payload["status"] != "completed":
        raise RuntimeError(f"run {payload['status']}: {payload['error']}")
    return float(payload["final"][cfg.optimized_metric])


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        checkpoint = None
        if cfg.get("resume"):
            from hydra.core.hydra_config import HydraConfig

            cfg, checkpoint = resume_config(cfg, list(HydraConfig.get().overrides.task))
        payload = train(cfg, checkpoint)
    except (ConfigError, DataError) as err:
        _discard_run_folder(cfg)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    return optimized_value(cfg, payload)


def _discard_run_folder(cfg: DictConfig) -> None:
    """A refused run leaves no folder that could pass for a finished run."""
    out = Path(cfg.output_dir)
    if out.is_dir() and not (out / RESULTS_FILE).exists():
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
