"""Cost of DDN against its base method, back to back: ``python bench/cost.py [--methods er derpp ...]``.

Each variant trains ``--steps`` steps of task 1 (buffer already full of task-0 samples, so replay and the
DDN outer step are active from the first step), alternating variants ``--repeats`` times, each measurement in
a fresh child process (so its peak memory is its own; start-up and data loading stay outside the timers).
Prints a Markdown table: seconds per step (median over repeats), inner / outer split, stream samples/s, data
share, peak RSS and, on a GPU, peak GPU memory, and the ratio to the variant's base method (``labels=hard``).
``--extra trainer=gpu trainer.precision=bf16-mixed`` measures on a GPU in bf16. ``--count-ops`` adds one run per
variant under the torch profiler and a column of torch ops dispatched per step (ops called inside another op not
counted): where a step is too small to keep a GPU busy, its time goes with that count, not with its arithmetic. On a
GPU it also gives the kernel time per step, the share of the step the GPU is busy, and the host's waits for the
device (syncs) per step. Profiled counts include the Trainer's start-up, spread over the (at most 20) steps.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.data.stream import TaskStream
    from src.learner import ContinualLearner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ["er", "der", "derpp", "erace", "clser"]
# every method with and without DDN (head scope, the default); for ER also K = 3 and the full-scope unroll
VARIANTS = {name: overrides for m in METHODS for name, overrides in [
    (m, [f"baseline={m}", "labels=hard"]),
    (f"{m}+ddn (head)", [f"baseline={m}", "labels=ddn"]),
    *([(f"{m}+ddn (head, K=3)", [f"baseline={m}", "labels=ddn", "ddn.unroll_steps=3"]),
       (f"{m}+ddn (full)", [f"baseline={m}", "labels=ddn", "ddn.unroll_scope=full"])] if m == "er" else [])]}


def base_of(variant: str) -> str:
    """The base method a variant's ratio is taken against: ``derpp+ddn (head)`` -> ``derpp``."""
    return variant.split("+")[0]


def is_top_level_op(event) -> bool:
    """An aten op of a profiler trace that no other aten op called: one dispatch from Python or autograd."""
    parent = event.cpu_parent
    return event.name.startswith("aten::") and (parent is None or not parent.name.startswith("aten::"))


def profile_ops(fn: Callable[[], object], cuda: bool = False) -> dict[str, float]:
    """Runs ``fn`` under the torch profiler. ``ops``: aten ops dispatched, not counting those an aten op calls
    inside itself (the backward pass's ops included): what each costs a launch and Python/dispatcher time,
    whatever its size. With ``cuda`` (a run on the GPU) also ``gpu_kernel_s`` (time the GPU spent running kernels
    and copies) and ``syncs`` (host waits for the device): whether a step is bound by the GPU or by the host."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize()
    events = prof.events()
    out = {"ops": float(sum(1 for e in events if is_top_level_op(e)))}
    if cuda:  # user annotations (optimizer steps) span kernels already counted: left out, as the profiler's total does
        out["gpu_kernel_s"] = sum(e.device_time_total for e in events if e.device_type == DeviceType.CUDA
                                  and not e.is_user_annotation) / 1e6
        out["syncs"] = float(sum(1 for e in events if e.name in ("cudaStreamSynchronize", "cudaDeviceSynchronize")))
    return out


def prepare(overrides: list[str], steps: int,
            threads: int | None) -> tuple[Callable[[], object], ContinualLearner, TaskStream, bool]:
    """Task 1 of the composed run with a full buffer of task-0 samples, so replay and the DDN outer step run from
    the first step. Returns ``fit`` (trains ``steps`` steps), the learner, the task stream and whether on a GPU."""
    import pytorch_lightning as pl
    import torch
    from hydra import compose, initialize_config_dir

    import src.config_resolvers  # noqa: F401
    from src.config_check import validate_config
    from src.train import build, quiet_lightning

    if threads:
        torch.set_num_threads(threads)
    quiet_lightning()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["logger=none", "trainer.enable_progress_bar=false", "output_dir=/tmp/cost",
                                          "checkpoint.enabled=false", *overrides])
    validate_config(cfg)  # a bad --extra fails here with the key and the fix, not inside a worker's traceback
    stream, learner = build(cfg)
    x, y = stream.train_x[stream.train_indices(0)], stream.train_y[stream.train_indices(0)]
    with torch.no_grad():  # a full buffer of task-0 samples (DER's stored logits: those of the initial net)
        n = min(2000, len(y))
        logits = torch.cat([learner.net(learner._prep(c, augment=False)) for c in x[:n].split(500)])
        learner.buffer.add(x[:n], y[:n], torch.zeros(n, dtype=torch.long), logits=logits)
    learner.seen_classes[:cfg.dataset.classes_per_task] = True
    stream.set_task(1)
    learner.start_task(1)
    learner.batches_per_epoch = stream.batches_per_epoch()
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator=cfg.trainer.accelerator,
                         precision=cfg.trainer.precision)
    cuda = torch.cuda.is_available() and cfg.trainer.accelerator != "cpu"
    return (lambda: trainer.fit(learner, datamodule=stream)), learner, stream, cuda


def measure(overrides: list[str], steps: int, threads: int | None, count_ops: bool = False) -> dict[str, float]:
    """Train ``steps`` steps of task 1 with a full buffer (``prepare``); runs in its own process (see ``main``).
    ``count_ops``: under the profiler (its timings are then not comparable), returns ``ops_per_step`` instead,
    and on a GPU ``gpu_kernel_s_per_step`` and ``syncs_per_step``."""
    import torch

    fit, learner, stream, cuda = prepare(overrides, steps, threads)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if count_ops:
        return {f"{k}_per_step": x / steps for k, x in profile_ops(fit, cuda=cuda).items()}
    t0 = time.perf_counter()
    fit()
    if cuda:  # the step timers stop before queued GPU work ends: count it in the wall-clock
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    t = learner.timings
    return {"s_per_step": t["step"] / steps, "outer_per_step": t["outer"] / steps,
            "inner_per_step": (t["step"] - t["outer"]) / steps, "wall": wall,
            "samples_per_s": learner.samples_seen / t["step"],
            "data_share": (stream.timer["load"] + t["augment"]) / (stream.timer["load"] + t["step"]),
            "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan"),
            "device": torch.cuda.get_device_name() if cuda else "cpu", "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="seq_cifar10")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--methods", nargs="*", default=["er"], choices=METHODS,
                    help="base methods whose variants run (default: er; all five: --methods er der derpp erace clser)")
    ap.add_argument("--variants", nargs="*", default=None, choices=sorted(VARIANTS),
                    help="exactly these variants instead (each with its base method, for the ratio)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per measurement (default: torch's)")
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every variant (setting=, trainer=)")
    ap.add_argument("--count-ops", action="store_true",
                    help="one more run per variant under the profiler: torch ops dispatched per step")
    args = ap.parse_args()
    wanted = args.variants or [v for v in VARIANTS if base_of(v) in args.methods]
    variants = [v for v in VARIANTS if v in wanted or v in {base_of(w) for w in wanted}]
    rows: dict[str, list[dict]] = {v: [] for v in variants}

    def overrides(variant: str) -> list[str]:
        return [f"dataset={args.dataset}", *VARIANTS[variant], *args.extra]

    ctx = mp.get_context("spawn")  # a fresh process per measurement: own peak memory, no state carried over
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for _ in range(args.repeats):
            for v in variants:
                rows[v].append(pool.apply(measure, (overrides(v), args.steps, args.threads)))
                print(v, {k: round(x, 4) if isinstance(x, float) else x for k, x in rows[v][-1].items()}, flush=True)
        prof = {v: pool.apply(measure, (overrides(v), min(args.steps, 20), args.threads, True))
                for v in variants} if args.count_ops else {}
    first = rows[variants[0]][0]
    print(f"\n{args.dataset} {' '.join(args.extra)} on {first['device']}, {args.steps} steps of task 1 per repeat, "
          f"{args.repeats} repeats, torch threads {first['threads']}\n")
    gpu = any("gpu_kernel_s_per_step" in p for p in prof.values())
    extra_cols = ([" torch ops / step", " ops × base"] if prof else []) + \
        ([" GPU kernel ms / step", " GPU busy", " syncs / step"] if gpu else [])
    print("| variant | s / step (median) | inner s / step | outer s / step | stream samples/s | data share "
          "| peak RSS MiB | peak GPU MiB | × base |" + "".join(c + " |" for c in extra_cols))
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(extra_cols))
    med = {v: statistics.median(r["s_per_step"] for r in rs) for v, rs in rows.items()}
    for v, rs in rows.items():
        def m(key: str) -> float:
            return statistics.median(r[key] for r in rs)
        cells = []
        if prof:
            ops, base_ops = prof[v]["ops_per_step"], prof[base_of(v)]["ops_per_step"]
            cells += [f"{ops:.0f}", f"{ops / base_ops:.2f}"]
        if gpu:  # busy: the profiled run's kernel time per step over the timed runs' step time
            k = prof[v]["gpu_kernel_s_per_step"]
            cells += [f"{k * 1e3:.2f}", f"{k / med[v]:.0%}", f"{prof[v]['syncs_per_step']:.1f}"]
        print(f"| {v} | {med[v]:.4f} | {m('inner_per_step'):.4f} | {m('outer_per_step'):.4f} "
              f"| {m('samples_per_s'):.1f} | {m('data_share'):.1%} | {max(r['rss_peak_mib'] for r in rs):.0f} "
              f"| {max(r['gpu_peak_mib'] for r in rs):.0f} | {med[v] / med[base_of(v)]:.2f} |"
              + "".join(f" {c} |" for c in cells))


if __name__ == "__main__":
    main()
