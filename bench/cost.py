"""Cost of DDN against its base method, back to back in one process: ``python bench/cost.py``.

Each variant trains ``--steps`` steps of task 1 (buffer already full of task-0 samples, so replay and the
DDN outer step are active from the first step), alternating variants ``--repeats`` times. Prints a
Markdown table: seconds per step (median over repeats), inner / outer split, data share, peak RSS and, on a
GPU, peak GPU memory. ``--extra trainer=gpu trainer.precision=bf16-mixed`` measures on a GPU in bf16.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import src.config_resolvers  # noqa: E402,F401
from src.train import build, quiet_lightning  # noqa: E402

VARIANTS = {
    "er": ["labels=hard"],
    "er+ddn (head)": ["labels=ddn"],
    "er+ddn (head, K=3)": ["labels=ddn", "ddn.unroll_steps=3"],
    "er+ddn (full)": ["labels=ddn", "ddn.unroll_scope=full"],
}


def measure(overrides: list[str], steps: int) -> dict[str, float]:
    cfg = compose("train", overrides=["logger=none", "trainer.enable_progress_bar=false", "output_dir=/tmp/cost",
                                      "checkpoint.enabled=false", *overrides])
    stream, learner = build(cfg)
    x, y = stream.train_x[stream.train_indices(0)], stream.train_y[stream.train_indices(0)]
    with torch.no_grad():  # a full buffer of task-0 samples
        learner.buffer.add(x[:2000], y[:2000], torch.zeros(2000, dtype=torch.long))
    learner.seen_classes[:2] = True
    stream.set_task(1)
    learner.start_task(1)
    learner.batches_per_epoch = stream.batches_per_epoch()
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator=cfg.trainer.accelerator,
                         precision=cfg.trainer.precision)
    cuda = torch.cuda.is_available() and cfg.trainer.accelerator != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(learner, datamodule=stream)
    if cuda:  # the step timers stop before queued GPU work ends: count it in the wall-clock
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    t = learner.timings
    return {"s_per_step": t["step"] / steps, "outer_per_step": t["outer"] / steps, "wall": wall,
            "samples_per_s": learner.samples_seen / t["step"],
            "data_share": (stream.timer["load"] + t["augment"]) / (stream.timer["load"] + t["step"]),
            "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="seq_cifar10")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every variant (setting=, trainer=)")
    args = ap.parse_args()
    quiet_lightning()
    rows: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for _ in range(args.repeats):
            for v in args.variants:
                rows[v].append(measure([f"dataset={args.dataset}", *VARIANTS[v], *args.extra], args.steps))
                print(v, rows[v][-1], flush=True)
    base = statistics.median(r["s_per_step"] for r in rows[args.variants[0]])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"\n{args.dataset} {' '.join(args.extra)} on {device}, {args.steps} steps of task 1 per repeat, {args.repeats} repeats, torch threads "
          f"{torch.get_num_threads()}, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB\n")
    print("| variant | s / step (median) | outer s / step | stream samples/s | data share | peak GPU MiB | × base |")
    print("|---|---|---|---|---|---|---|")
    for v, rs in rows.items():
        med = statistics.median(r["s_per_step"] for r in rs)
        print(f"| {v} | {med:.4f} | {statistics.median(r['outer_per_step'] for r in rs):.4f} | "
              f"{statistics.median(r['samples_per_s'] for r in rs):.1f} | "
              f"{statistics.median(r['data_share'] for r in rs):.1%} | {max(r['gpu_peak_mib'] for r in rs):.0f} | "
              f"{med / base:.2f} |")


if __name__ == "__main__":
    main()
