"""Are two sets of runs the same? ``python bench/compare_runs.py OLD NEW``

OLD and NEW are suite folders (``bench/out/mnist``, or the same suite in a clean clone) or single run folders;
runs are matched by their path under them (``<tag>/seed<k>/results.json``). A pair is *identical* when every
field of ``results.json`` is equal except timings, ``versions`` and the config keys that do not change a run
(``src.results.RUN_NEUTRAL_KEYS``: its folder, resume, progress bar); accuracy matrices, per-class figures and
label diagnostics are included, config options only one side records are skipped (``config_differences``). On one CPU
and one thread count a rerun, or a change that claims not to touch the numbers, should give identical pairs; on
another CPU or with more torch threads the math kernels differ (BENCHMARKS, header and section 7), so the class-IL
differences are printed too. Exits 1 when a matched pair differs or nothing matches.

``--mean [METRIC]``: the check *in the mean* for two sets that are not expected to be identical (another CPU, another
thread count): one row per arm (a run's path without its ``seed<k>``), over the seeds both sides have: each side's
mean ± sd of METRIC (default ``class_il``), the paired shift new − old ± its 95% t-interval, how many runs are
identical and how many relabel (a learned label's argmax off the hard one on more than ``FLIP_SHARE`` of a draw,
``label_diagnostics.argmax_flip_share``) on each side. Exits 1 only when nothing matches.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.plugins.labels import FLIP_SHARE  # noqa: E402
from src.report import ci95, mean_std  # noqa: E402
from src.results import RESULTS_FILE, config_differences  # noqa: E402

# what a rerun may change without the run being different
TIMING_FIELDS = {"wall_clock_s", "train_s", "eval_s", "samples_per_s", "step_timings_s", "data_share",
                 "finished_at", "versions"}


def runs(root: Path) -> dict[str, dict]:
    """{path relative to ``root``: results.json} of every run under ``root`` (``root`` itself may be a run)."""
    return {str(f.parent.relative_to(root)): json.loads(f.read_text()) for f in sorted(root.rglob(RESULTS_FILE))}


def differing_fields(old: dict, new: dict) -> list[str]:
    """Top-level result fields, then ``config.<dotted key>``s, whose values differ, timings left out. A config key
    only one side has (an option added after the older run) is not a difference: the run could not record it."""
    out = [k for k in sorted((set(old) | set(new)) - TIMING_FIELDS - {"config"}) if old.get(k) != new.get(k)]
    return out + [f"config.{k}" for k in config_differences(old.get("config") or {}, new.get("config") or {},
                                                              shared_only=True)]


def final_metric(result: dict, metric: str = "class_il") -> float | None:
    return (result.get("final") or {}).get(metric)


def compare(old_root: Path, new_root: Path) -> tuple[list[str], int]:
    """Report lines (Markdown) and the number of matched pairs that differ (-1: no pair matched)."""
    old, new = runs(old_root), runs(new_root)
    both = sorted(set(old) & set(new))
    lines = [f"OLD {old_root} ({_machine(old)}), NEW {new_root} ({_machine(new)})", "",
             "| run | identical | class-IL old → new | differing fields |", "|---|---|---|---|"]
    n_diff = 0
    for key in both:
        fields = differing_fields(old[key], new[key])
        n_diff += bool(fields)
        a, b = final_metric(old[key]), final_metric(new[key])
        change = "–" if a is None or b is None else f"{a:.2f} → {b:.2f}" + (f" ({b - a:+.2f})" if a != b else "")
        lines.append(f"| {key} | {'yes' if not fields else 'no'} | {change} | {', '.join(fields) or '–'} |")
    lines += ["", f"{len(both) - n_diff} of {len(both)} matched runs identical"
              + _unmatched("OLD", set(old) - set(new)) + _unmatched("NEW", set(new) - set(old))]
    return lines, n_diff if both else -1


def arms(results: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """{arm: {seed folder: result}}: ``a/b/seed3`` is seed ``seed3`` of arm ``a/b`` (a path without a seed folder is
    an arm of its own, its one run under the seed name "")."""
    out: dict[str, dict[str, dict]] = {}
    for key, result in results.items():
        head, _, last = key.rpartition("/")
        arm, seed = (head or ".", last) if re.fullmatch(r"seed\d+", last) else (key, "")
        out.setdefault(arm, {})[seed] = result
    return out


def relabels(result: dict) -> bool:
    return ((result.get("label_diagnostics") or {}).get("argmax_flip_share") or 0.0) > FLIP_SHARE


def compare_mean(old_root: Path, new_root: Path, metric: str = "class_il") -> tuple[list[str], int]:
    """Report lines (Markdown), one row per arm both sides have, and the number of arms matched."""
    old_runs, new_runs = runs(old_root), runs(new_root)
    old, new = arms(old_runs), arms(new_runs)
    lines = [f"OLD {old_root} ({_machine(old_runs)}), NEW {new_root} ({_machine(new_runs)}); {metric}", "",
             "| arm | seeds | old | new | new − old (95% CI) | identical | relabelled (> "
             f"{FLIP_SHARE:.0%}) old → new |", "|---|---|---|---|---|---|---|"]
    matched = 0
    for arm in sorted(set(old) & set(new)):
        seeds = sorted(set(old[arm]) & set(new[arm]), key=lambda s: int(s.removeprefix("seed") or 0))
        pairs = [(old[arm][s], new[arm][s]) for s in seeds]
        # a run that diverged (or has no such metric) on either side is left out of the figures and counted
        done = [(x, y) for x, y in pairs if _usable(x, metric) and _usable(y, metric)]
        if not done:
            continue
        matched += 1
        a = [final_metric(x, metric) for x, _ in done]
        b = [final_metric(y, metric) for _, y in done]
        shift, half = ci95([y - x for x, y in zip(a, b)])
        shift_cell = f"{shift:+.2f}" + (f" ± {half:.2f}" if len(done) > 1 else " (one seed)")
        same = sum(not differing_fields(x, y) for x, y in done)
        flips = f"{sum(relabels(x) for x, _ in done)} → {sum(relabels(y) for _, y in done)}"
        n = f"{len(done)}" + (f" ({len(pairs) - len(done)} not completed)" if len(done) < len(pairs) else "")
        lines.append(f"| {arm} | {n} | {_mean_sd(a)} | {_mean_sd(b)} | {shift_cell} | {same} of {len(done)} "
                     f"| {flips} |")
    lines += ["", f"{matched} arms matched" + _unmatched("OLD", set(old) - set(new))
              + _unmatched("NEW", set(new) - set(old))]
    return lines, matched


def _usable(result: dict, metric: str) -> bool:
    return result.get("status") == "completed" and final_metric(result, metric) is not None


def _mean_sd(values: list[float]) -> str:
    m, sd, n = mean_std(values)
    return f"{m:.2f}" if n < 2 else f"{m:.2f} ± {sd:.2f}"


def _unmatched(side: str, keys: set[str]) -> str:
    if not keys:
        return ""
    shown = sorted(keys)[:4]
    return f"; {len(keys)} only in {side} ({', '.join(shown)}{', …' if len(keys) > len(shown) else ''})"


def _machine(results: dict[str, dict]) -> str:
    """The CPUs (and torch thread counts, where recorded) the runs ran on: bit for bit needs both the same."""
    seen = set()
    for r in results.values():
        v = r.get("versions") or {}
        threads = f", {v['torch_threads']} threads" if "torch_threads" in v else ""
        cpu_id = f" ({v['cpu_id']})" if "cpu_id" in v else ""
        seen.add(f"{v.get('cpu', '?')}{cpu_id} {v.get('cpu_capability', '')}".strip() + threads)
    return "; ".join(sorted(seen)) or "no runs"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--mean", nargs="?", const="class_il", default=None, metavar="METRIC",
                   help="per arm, in the mean over seeds (another CPU or thread count), instead of run by run")
    args = p.parse_args(argv)
    for folder in (args.old, args.new):
        if not folder.is_dir():
            sys.exit(f"{folder}: not a folder; give a suite folder such as bench/out/mnist or one run folder")
    if args.mean:
        lines, matched = compare_mean(args.old, args.new, args.mean)
        print("\n".join(lines))
        return 0 if matched else 1
    lines, n_diff = compare(args.old, args.new)
    print("\n".join(lines))
    return 0 if n_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
