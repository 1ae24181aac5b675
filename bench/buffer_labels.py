"""Where the learned labels of finished runs send the buffer: ``python bench/buffer_labels.py PATH ...``.

PATH is a run folder (``.../seed<k>`` with ``checkpoints/last.ckpt``) or any folder above run folders (a suite).
Each run's final state is rebuilt from its checkpoint and the label plug-in's soft label is computed for every
buffer sample as the inner step would use it (EMA cache for ``ddn``; no augmentation; BatchNorm on the batch's
statistics, the running ones untouched, as the gradient-alignment diagnostic does). Per run: buffer size, the
share of samples whose label argmax is not their class ("flipped"), the mean mass on the true class, where the
flips point (a class of the sample's own task, of an earlier task or of a later one), the share of flipped
samples that belong to the current task, the share of flips that land on one single class, the "task of the
sample → task of its label's argmax" counts and the (up to 8) largest class → class flows (each with the number of
buffer samples of its source class: ×24/24 is a whole class relabelled). Then one line per arm
(SUITE/TAG, the folders above the seed folders): means over its runs. Skipped: runs without a learned-label plug-in
(``labels=hard``, ``smooth``, ...) and, without ``--task-ends``, runs with no ``results.json`` (still running, or
killed: their last checkpoint is not the final state). ``--network-part``: for runs with ``ddn.label_mix`` < 1,
the label network's own distribution instead of the (anchored) label. Markdown on stdout.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from statistics import fmean

import torch
from omegaconf import OmegaConf
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.checkpoint import CHECKPOINT_DIR, LAST, load  # noqa: E402
from src.methods.base import StepBatch  # noqa: E402
from src.models.backbones import frozen_norm_stats  # noqa: E402
from src.plugins.ddn import BilevelLabels  # noqa: E402
from src.train import build, restore  # noqa: E402

SHARES = ("to_same_task", "to_earlier_task", "to_later_task", "from_current_task", "into_one_class")


def checkpoints(paths: list[str], task_ends: bool = False) -> list[Path]:
    """``last.ckpt`` of every run folder at or under the given paths; with ``task_ends`` its ``task<t>.ckpt``
    files instead (runs with ``checkpoint.keep_task_ends=true``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        runs = sorted(c.parent for c in p.glob(f"**/{CHECKPOINT_DIR}/{LAST}"))
        if not task_ends:  # a last.ckpt without results.json is a run still going (or killed): not its final state
            for r in [r for r in runs if not (r.parent / "results.json").is_file()]:
                print(f"skipped {r.parent}: unfinished (no results.json)", file=sys.stderr)
                runs.remove(r)
        found = [f for r in runs for f in (sorted(r.glob("task*.ckpt"), key=_task_number) if task_ends else [r / LAST])]
        if not found:
            what = "task<t>.ckpt (run with checkpoint.keep_task_ends=true)" if task_ends else LAST
            raise SystemExit(f"{p}: no {'' if task_ends else 'finished '}run folder with {CHECKPOINT_DIR}/{what} "
                             "at or under it")
        out += found
    return out


def _task_number(path: Path) -> int:
    return int(path.stem.removeprefix("task"))


def summarise(y: Tensor, task: Tensor, probs: Tensor, current_task: int, classes_per_task: int,
              n_tasks: int) -> dict:
    """Flip statistics of soft labels ``probs`` (N, C) of buffer samples with classes ``y`` and tasks ``task``
    (the stream's remapped labels: task t holds classes t * classes_per_task, ...)."""
    # as the run's own diagnostics: a tie with the true class (label_mix=0.5 saturated) is not a flip
    true_p = probs.gather(1, y[:, None]).squeeze(1)
    pred = torch.where(probs.amax(1) > true_p, probs.argmax(1), y)
    label_task = pred // classes_per_task
    flipped = pred != y
    matrix = torch.zeros(n_tasks, n_tasks, dtype=torch.long)
    matrix.index_put_((task, label_task), torch.ones_like(pred), accumulate=True)
    n_flip = int(flipped.sum())

    def share(mask: Tensor) -> float:
        return float((flipped & mask).sum()) / n_flip if n_flip else 0.0

    pairs, counts = torch.stack([y[flipped], pred[flipped]], 1).unique(dim=0, return_counts=True)
    top = counts.argsort(descending=True, stable=True)[:8]
    return {"n": len(pred), "flipped": n_flip / len(pred), "true_mass": float(true_p.mean()),
            "to_same_task": share(label_task == task), "to_earlier_task": share(label_task < task),
            "to_later_task": share(label_task > task), "from_current_task": share(task == current_task),
            "into_one_class": float(torch.bincount(pred[flipped]).max()) / n_flip if n_flip else 0.0,
            "task_matrix": matrix.tolist(),
            "top_flips": [(int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i]), int((y == pairs[i, 0]).sum()))
                          for i in top]}


@torch.no_grad()
def buffer_labels(path: Path, network_part: bool = False) -> dict | None:
    """The buffer labels of the state saved in checkpoint ``path``, summarised; None without learned labels.
    ``network_part``: with ``ddn.label_mix`` m < 1, summarise the label network's own distribution G(x) instead of
    the label (1 - m) one_hot(y) + m G(x), whose argmax cannot flip for m < 0.5."""
    ckpt = load(path.parents[1], path.name)
    stream, learner = build(OmegaConf.create(ckpt["config"]))
    if not isinstance(learner.labels, BilevelLabels) or learner.buffer is None:
        return None
    restore(learner, ckpt)
    learner.train()  # the inner step's mode: batch statistics
    buf, plugin, ctx = learner.buffer, learner.labels, learner.context()
    d = buf.gather(torch.arange(len(buf)))
    draw = StepBatch(learner.preprocess(d.x), d.y, d.task, d.logits, d.slots)
    with frozen_norm_stats(learner.net):
        feats = learner.net.features(draw.x)
    probs = plugin.soft_labels(feats, draw, ctx)
    mix = getattr(getattr(plugin, "label_net", None), "mix", 1.0)
    if network_part and mix < 1:
        probs = (probs - (1 - mix) * torch.nn.functional.one_hot(draw.y, probs.shape[1])) / mix
    run_dir = path.parents[1]
    name = str(run_dir) if path.name == LAST else f"{run_dir} after task {_task_number(path)}"
    return {"run": name, "arm": f"{run_dir.parent.parent.name}/{run_dir.parent.name}", "task": ctx.task,
            **summarise(draw.y, draw.task, probs, ctx.task, stream.classes_per_task, stream.n_tasks)}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown(rows: list[dict], by_task: bool = False) -> str:
    """Per-run table, then means per arm (per arm and task with ``by_task``)."""
    head = ("| {} | flipped | true-class mass | flips to own / earlier / later task | flips from the current task "
            "| flips into one class |")
    lines = [head.format("run") + " task of sample → task of label argmax (a row per sample's task) "
             "| flows, class → class × count / buffer samples of that class (the 8 largest) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        matrix = "; ".join(" ".join(map(str, row)) for row in r["task_matrix"])
        flows = ", ".join(f"{a}→{b} ×{c}/{n}" for a, b, c, n in r["top_flips"])
        lines.append(f"| {r['run']} | {_pct(r['flipped'])} | {r['true_mass']:.3f} | {_pct(r['to_same_task'])} / "
                     f"{_pct(r['to_earlier_task'])} / {_pct(r['to_later_task'])} | {_pct(r['from_current_task'])} | "
                     f"{_pct(r['into_one_class'])} | {matrix} | {flows} |")
    by_arm: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["task"]) if by_task else rows:
        by_arm[f"{r['arm']}, after task {r['task']}" if by_task else r["arm"]].append(r)
    lines += ["", "Means over the runs of each arm (shares of flips: over the runs that flip any label)", "",
              head.format("arm (runs)"), "|---|---|---|---|---|---|"]
    for arm, rs in by_arm.items():
        fl = [r for r in rs if r["flipped"] > 0] or rs
        m = {k: fmean(r[k] for r in fl) for k in SHARES}
        lines.append(f"| {arm} ({len(rs)}) | {_pct(fmean(r['flipped'] for r in rs))} | "
                     f"{fmean(r['true_mass'] for r in rs):.3f} | {_pct(m['to_same_task'])} / "
                     f"{_pct(m['to_earlier_task'])} / {_pct(m['to_later_task'])} | {_pct(m['from_current_task'])} | "
                     f"{_pct(m['into_one_class'])} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run folders or folders above them (a suite, an arm)")
    parser.add_argument("--task-ends", action="store_true",
                        help="the state after every task (checkpoints/task<t>.ckpt) instead of the final one")
    parser.add_argument("--network-part", action="store_true",
                        help="with ddn.label_mix < 1: the label network's own distribution, not the mixed label")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for p in checkpoints(args.paths, args.task_ends)
            if (r := buffer_labels(p, args.network_part)) is not None]
    print(markdown(rows, by_task=args.task_ends))


if __name__ == "__main__":
    main(sys.argv[1:])
