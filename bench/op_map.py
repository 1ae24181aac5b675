"""Where a training step's torch ops go, by phase: ``python bench/op_map.py [--variant "er+ddn (head)"]``.

On a GPU at online batch sizes a step costs what dispatching its ops costs (BENCHMARKS 4d), so the lever for a
plug-in's overhead is the ops it adds. This runs ``bench/cost.py``'s setting (task 1 of Split CIFAR-10 with a full
buffer) under the torch profiler with each phase of the step wrapped in a named range (the learner's replay draw,
backbone forwards, loss terms, backward, buffer insert; the label plug-in's outer step, validation draw, label
network, virtual step, hypergradient statistics, label-cache update, soft targets; the optimizers' steps, which
the profiler names itself) and prints the top-level aten ops per step of each phase, nested as called. Counts
are the same as ``cost.py --count-ops`` (the Trainer's start-up spread over the steps). On a GPU the backward
pass runs on autograd's own thread, so its ops land in "(no phase)"; count on the CPU for the split.
"""
from __future__ import annotations

import argparse
import collections
import functools
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost  # noqa: E402

MARK = "§"  # prefix of our ranges among the profiler's
PHASES = {  # learner attribute -> {method: phase name}; absent attributes and methods are skipped
    "": {"training_step": "step", "draw_replay": "replay draw", "inner_loss": "loss terms",
         "manual_backward": "backward"},
    "net": {"features": "backbone forward"},
    "buffer": {"add": "buffer insert"},
    "method": {"after_step": "method after-step"},
    "labels": {"maybe_outer_step": "outer step", "validation_batch": "validation draw", "live_labels": "label network",
               "unroll": "virtual step", "_on_hypergrad": "hypergradient stats", "after_outer": "label cache update",
               "targets": "soft targets"},
}


def _ranged(fn: Callable, name: str) -> Callable:
    from torch.profiler import record_function

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(MARK + name):
            return fn(*args, **kwargs)
    return wrapper


def op_map(overrides: list[str], steps: int, threads: int | None) -> dict[str, collections.Counter]:
    """Top-level aten ops of ``steps`` training steps, by phase path (``"step › outer step › backward"``)."""
    from torch.profiler import ProfilerActivity, profile

    fit, learner, _, _ = cost.prepare(overrides, steps, threads)
    for owner_name, methods in PHASES.items():
        owner = getattr(learner, owner_name) if owner_name else learner
        for method, phase in methods.items():
            if owner is not None and hasattr(owner, method):  # instance attribute: internal self.x() calls see it too
                object.__setattr__(owner, method, _ranged(getattr(owner, method), phase))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit()
    by_phase: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for e in prof.events():
        if not cost.is_top_level_op(e):
            continue
        path, parent = [], e.cpu_parent
        while parent is not None:
            if parent.name.startswith(MARK):
                path.append(parent.name[len(MARK):])
            elif parent.name.startswith("Optimizer.step#"):
                path.append("optimizer " + parent.name.split("#")[1].split(".")[0])
            parent = parent.cpu_parent
        by_phase[" › ".join(reversed(path)) or "(no phase)"][e.name.removeprefix("aten::")] += 1
    return dict(by_phase)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="er+ddn (head)", choices=sorted(cost.VARIANTS))
    ap.add_argument("--dataset", default="seq_cifar10")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides (setting=, trainer=)")
    args = ap.parse_args()
    phases = op_map([f"dataset={args.dataset}", *cost.VARIANTS[args.variant], *args.extra], args.steps, args.threads)
    total = sum(sum(c.values()) for c in phases.values())
    print(f"\n{args.variant}, {args.dataset} {' '.join(args.extra)}: {total / args.steps:.0f} top-level torch ops per "
          f"step ({args.steps} steps of task 1, full buffer, start-up included)\n")
    print("| phase | ops / step | share | most frequent ops (per step) |\n|---|---|---|---|")
    for name, ops in sorted(phases.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(ops.values())
        top = ", ".join(f"{op} {c / args.steps:.0f}" for op, c in ops.most_common(5))
        print(f"| {name} | {n / args.steps:.1f} | {n / total:.0%} | {top} |")


if __name__ == "__main__":
    main()
