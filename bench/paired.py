"""Paired gains of every run folder of a suite against a base folder: ``python bench/paired.py SUITE BASE [METRICS [MODEL]]``.

BASE is a run folder of the suite (``er_hard``) or of another suite (``cifar_online_aug/er_hard_augment-true``:
the runs of an ``--out`` variant against the base arm they share seeds with). Pairs by seed
(``<suite>/<tag>/seed<k>/results.json``); prints, Markdown, per run folder: its mean, the paired gain's mean ±
95% t-interval, the gains' sd and how many are positive, the per-seed gains and n, the diagonal of the metric's
accuracy matrix (accuracy on each task just after learning it, mean over tasks and seeds) beside the base's, and
the training time as a multiple of the base's on the same seed (mean, min–max). MODEL (CLS-ER's ``plastic`` or
``working``) pairs that model's final figure (``plastic_class_il``, ``plastic_forgetting``, …) instead of the reported one.
METRICS is one final metric (default ``class_il``) or several joined by commas (``class_il,task_il,forgetting``):
one table each, in that order. ``--recorded CPU`` takes BASE's per-seed class-IL from bench/recorded.csv (the figures
BENCHMARKS.md records on that CPU) instead of its results.json files: on a CPU that reproduces them
(``bench/check_recorded.py``), a variant is paired without rerunning its base (class-IL only; no diagonal or time).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from check_recorded import recorded  # noqa: E402
from src.report import ci95, mean_std  # noqa: E402


def load(folder: Path) -> dict[str, dict]:
    """{seed folder name: results.json} of the completed runs under ``folder``."""
    out = {}
    for f in folder.glob("seed*/results.json"):
        r = json.loads(f.read_text())
        if r["status"] == "completed":
            out[f.parent.name] = r
    return out


def recorded_base(base: str, cpu: str, rows: list[dict]) -> dict[str, dict]:
    """BASE (``suite/tag``) as the recorded ``rows`` hold it on ``cpu``: {seed folder name: a results.json with only
    the final class-IL}; exits naming the fix when none is recorded."""
    suite, _, tag = base.partition("/")
    found = {f"seed{r['seed']}": {"status": "completed", "final": {"class_il": r["class_il"]}}
             for r in rows if (r["suite"], r["tag"], r["cpu"].lower()) == (suite, tag, cpu.lower())}
    if not found:
        sys.exit(f"paired.py: bench/recorded.csv has no run of {base} on {cpu} (--recorded); BASE is SUITE/TAG "
                 "as its rows name it")
    return found


def diagonal(result: dict, metric: str, model: str | None = None) -> float | None:
    """Mean accuracy on each task right after training on it (``model``'s ``metric`` matrix, by default the
    reported model's), None without it."""
    m = (result.get("accuracy_matrices") or {}).get(model or result.get("reported_model", "net"), {}).get(metric)
    return sum(m[i][i] for i in range(len(m))) / len(m) if m else None


def final_key(result: dict, metric: str, model: str | None = None) -> str:
    """Where results.json's ``final`` keeps ``metric`` of the reported model, or of ``model`` (another model's as
    ``<model>_<metric>``)."""
    return metric if model in (None, result.get("reported_model")) else f"{model}_{metric}"


def final(result: dict, metric: str, model: str | None = None) -> float:
    """The final ``metric`` of the reported model, or of ``model``."""
    return result["final"][final_key(result, metric, model)]


def _mean_or_none(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def rows(suite: Path, base: Path, metric: str = "class_il", model: str | None = None,
         ref: dict[str, dict] | None = None) -> list[dict]:
    """One row per run folder of ``suite`` (other than ``base``) sharing seeds with ``base``: its mean over the
    shared seeds, the paired gain's mean, 95% half-width, sd and positive count, the per-seed gains in seed order,
    both arms' mean diagonal and the per-seed training-time ratios (None where a run lacks the field).
    ``ref``: the base's runs, when not read from ``base`` (``recorded_base``)."""
    ref = load(base) if ref is None else ref
    out = []
    for folder in sorted(p for p in suite.iterdir() if p.is_dir() and p.resolve() != base.resolve()):
        runs = load(folder)
        seeds = sorted(set(runs) & set(ref), key=lambda s: int(s.removeprefix("seed")))
        if not seeds:
            continue
        values = [final(runs[s], metric, model) for s in seeds]
        gains = [v - final(ref[s], metric, model) for v, s in zip(values, seeds)]
        g, half = ci95(gains)
        times = [(runs[s].get("train_s"), ref[s].get("train_s")) for s in seeds]
        ratios = None if any(a is None or not b for a, b in times) else [a / b for a, b in times]
        out.append({"tag": folder.name, "n": len(seeds),
                    "mean": sum(values) / len(values),
                    "gain": g, "half": half, "sd": mean_std(gains)[1], "positive": sum(x > 0 for x in gains),
                    "gains": gains,
                    "diagonal": _mean_or_none([diagonal(runs[s], metric, model) for s in seeds]),
                    "base_diagonal": _mean_or_none([diagonal(ref[s], metric, model) for s in seeds]),
                    "time_ratios": ratios})
    return out


def markdown(table: list[dict], base_name: str, metric: str) -> str:
    lines = [f"| run | {metric} (mean) | paired gain vs {base_name} (95% CI) | sd | positive | per seed | n "
             f"| diagonal (run / base) | training time × base (min–max) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        per_seed = ", ".join(f"{x:+.2f}" for x in r["gains"])
        diag = "–" if r["diagonal"] is None or r["base_diagonal"] is None else \
            f"{r['diagonal']:.1f} / {r['base_diagonal']:.1f}"
        t = r["time_ratios"]
        time = "–" if not t else f"{sum(t) / len(t):.2f} ({min(t):.2f}–{max(t):.2f})"
        # one seed has no interval and no spread: say so rather than print "± nan"
        gain, sd = (f"{r['gain']:+.2f} (one seed)", "–") if r["n"] < 2 else \
            (f"{r['gain']:+.2f} ± {r['half']:.2f}", f"{r['sd']:.2f}")
        lines.append(f"| {r['tag']} | {r['mean']:.2f} | {gain} | {sd} "
                     f"| {r['positive']}/{r['n']} | {per_seed} | {r['n']} | {diag} | {time} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Path = OUT) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suite")
    p.add_argument("base")
    p.add_argument("metrics", nargs="?", default="class_il", help="a final metric, or several joined by commas")
    p.add_argument("model", nargs="?", default=None, help="CLS-ER's plastic or working model")
    p.add_argument("--recorded", metavar="CPU", default=None,
                   help="BASE's class-IL per seed from bench/recorded.csv's rows of CPU (AMD or Intel), not its runs")
    args = p.parse_args(argv)
    suite = out / args.suite
    base = out / args.base if "/" in args.base else suite / args.base
    if args.recorded:
        base_runs = recorded_base(str(base.relative_to(out)), args.recorded, recorded())
    elif not base.is_dir():
        sys.exit(f"paired.py: no run folder {base}; BASE is a tag of {suite.name} or SUITE/TAG under bench/out")
    else:
        base_runs = load(base)
    metrics = args.metrics.split(",")
    ref = next(iter(base_runs.values()), None)
    if ref is not None:  # before any table: a misspelt metric or model names the figures the runs have
        for key in (final_key(ref, m, args.model) for m in metrics):
            if key not in ref["final"]:
                sys.exit(f"paired.py: {base} has no final {key!r} (METRICS / MODEL); "
                         f"it has {', '.join(sorted(ref['final']))}"
                         + (" (a recorded base: class-IL only)" if args.recorded else ""))
    name = f"{args.base} (recorded, {args.recorded})" if args.recorded else args.base
    for i, metric in enumerate(metrics):
        label = metric if args.model is None else f"{metric} ({args.model})"
        print(("\n" if i else "") + markdown(rows(suite, base, metric, args.model, base_runs), name, label))


if __name__ == "__main__":
    main()
