"""Turn a sweep (or any folder of runs) into paper-style tables: ``python -m src.report <folder>``.

Collects every ``results.json`` below the folder, groups runs by the design keys that vary, averages over
seeds (mean ± std, n), adds the paired gain of ``labels=ddn`` (or any treatment) over ``labels=hard`` with
a 95% t-interval, and writes ``report.md`` and ``report.csv`` (plus figures) into the folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from src.results import RESULTS_FILE, flatten
from src.tb_logging import accuracy_heatmap

DESIGN_KEYS = [
    "baseline.name", "dataset.name", "setting.name", "buffer", "labels", "alpha", "beta", "optimizer.lr",
    "setting.augment", "setting.epochs", "ddn.lr", "ddn.every", "ddn.unroll_steps", "ddn.unroll_scope",
    "ddn.first_order", "ddn.val_source", "ddn.val_balanced", "ddn.input", "ddn.class_input", "ddn.old_to_old",
    "ddn.own_task", "ddn.per_step",
    "ddn.boundary_iters", "label_smoothing", "head",
    "dataset.imbalance_ratio",
]
METRICS = ["class_il", "task_il", "forgetting"]
CONF = Path(__file__).resolve().parents[1] / "conf" / "train.yaml"
RUN_FIELDS = {"status", "wall_clock_s", "path", "samples_per_s", "matrix", "seed", "output_dir"}  # not design keys
SHORT = {"baseline.name": "method", "dataset.name": "dataset", "setting.name": "setting"}


def collect(folder: Path) -> list[dict[str, Any]]:
    """One row per run: flattened config, final metrics, status, wall-clock."""
    rows = []
    for path in sorted(folder.rglob(RESULTS_FILE)):
        res = json.loads(path.read_text())
        row = flatten(res.get("config", {}))
        row.update({f"final.{k}": v for k, v in (res.get("final") or {}).items()})
        row.update(status=res.get("status"), wall_clock_s=res.get("wall_clock_s"), path=str(path.parent),
                   samples_per_s=res.get("samples_per_s"),
                   matrix=(res.get("accuracy_matrices") or {}).get(res.get("reported_model"), {}).get("class_il"))
        rows.append(row)
    return rows


def varying(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    return [k for k in keys if len({json.dumps(r.get(k)) for r in rows}) > 1]


def design_keys(rows: list[dict[str, Any]], extra_keys: list[str] | None = None) -> list[str]:
    """The config keys to group runs by: the varying ``DESIGN_KEYS``, then any other config key that still takes
    two values inside one group, so that an option missing from ``DESIGN_KEYS`` (one added later, say
    ``ddn.label_mix``) splits its runs instead of being averaged with (and paired against) the others.

    A key absent from a run (written before the option existed) does not count as a value; a key that copies
    the seed (``baseline.method.seed``) is not a design key."""
    by = varying(rows, DESIGN_KEYS + (extra_keys or []))
    config = sorted({k for r in rows for k in r if k not in RUN_FIELDS and not k.startswith("final.")} - set(by))
    for key in config:
        if all(r.get(key) is None or json.dumps(r.get(key)) == json.dumps(r.get("seed")) for r in rows):
            continue
        groups: dict[tuple, set[str]] = defaultdict(set)
        for r in rows:
            if r.get(key) is not None:
                groups[tuple(json.dumps(r.get(k)) for k in by)].add(json.dumps(r.get(key)))
        if any(len(values) > 1 for values in groups.values()):
            by.append(key)
    return by


def fill_defaults(rows: list[dict[str, Any]], conf: Path = CONF) -> list[dict[str, Any]]:
    """Give runs written before an option existed the option's default from ``conf/train.yaml`` (its "off"
    value), so that they group with the runs that set it to that default."""
    defaults = flatten(OmegaConf.to_container(OmegaConf.load(conf), resolve=False))
    fill = {k: v for k, v in defaults.items() if "${" not in str(v)}
    return [{**r, **{k: v for k, v in fill.items() if k not in r}} for r in rows]


def mean_std(values: list[float]) -> tuple[float, float, int]:
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval."""
    from scipy import stats

    v = np.array(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()) if len(v) else math.nan, math.nan
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def aggregate(rows: list[dict[str, Any]], by: list[str], metrics: list[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("status") == "completed":
            groups[tuple(json.dumps(r.get(k)) for k in by)].append(r)
    table = []
    for key, members in sorted(groups.items()):
        entry: dict[str, Any] = {k: json.loads(v) for k, v in zip(by, key)}
        for m in metrics:
            entry[m] = mean_std([r.get(f"final.{m}") for r in members])
        entry["wall_clock_s"] = mean_std([r.get("wall_clock_s") for r in members])
        entry["seeds"] = sorted(r.get("seed") for r in members)
        table.append(entry)
    return table


def paired_gain(rows: list[dict[str, Any]], by: list[str], metric: str, arm: str = "labels",
                base: str = "hard") -> list[dict[str, Any]]:
    """Per (group without ``arm``) and treatment: mean of (treatment - base) over seeds run in both arms."""
    keys = [k for k in by if k != arm]
    cells: dict[tuple, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r.get("status") == "completed" and r.get(f"final.{metric}") is not None:
            cells[tuple(json.dumps(r.get(k)) for k in keys)][str(r.get(arm))][r.get("seed")] = r[f"final.{metric}"]
    out = []
    for key, arms in sorted(cells.items()):
        if base not in arms:
            continue
        for treat, by_seed in arms.items():
            if treat == base:
                continue
            seeds = sorted(set(by_seed) & set(arms[base]))
            if not seeds:
                continue
            diffs = [by_seed[s] - arms[base][s] for s in seeds]
            mean, half = ci95(diffs)
            entry = {k: json.loads(v) for k, v in zip(keys, key)}
            entry.update(treatment=treat, gain=mean, ci95=half, std=float(np.std(diffs, ddof=1)) if len(diffs) > 1
                         else 0.0, n=len(seeds))
            out.append(entry)
    return out


PAPER_COLS = ["dataset.name", "setting.name", "buffer"]


def paper_table(rows: list[dict[str, Any]], by: list[str], metric: str) -> list[dict[str, Any]] | None:
    """The paper's layout: a row per method (+ label variant), a column per (dataset, setting, buffer), and
    under each variant its paired gain over the method's ``labels=hard`` row (mean ± 95% half-width).
    None unless only method, labels and column keys vary (anything else would be averaged away)."""
    cols_by = [k for k in PAPER_COLS if k in by]
    if not ({"baseline.name", *cols_by} & set(by)) or not set(by) <= {"baseline.name", "labels", *PAPER_COLS}:
        return None
    done = [r for r in rows if r.get("status") == "completed" and r.get(f"final.{metric}") is not None]
    col = lambda r: " / ".join(str(r.get(k)) for k in cols_by) or metric  # noqa: E731
    columns = sorted({col(r) for r in done}, key=lambda c: [int(x) if x.isdigit() else x for x in c.split(" / ")])
    cells: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in done:
        cells[(r.get("baseline.name"), str(r.get("labels")), col(r))][r.get("seed")] = r[f"final.{metric}"]
    table = []
    for method in sorted({r.get("baseline.name") for r in done}):
        variants = sorted({lab for (m, lab, _) in cells if m == method}, key=lambda v: (v != "hard", v))
        for lab in variants:
            row: dict[str, Any] = {"method": method if lab == "hard" else f"{method} + {lab}"}
            for c in columns:
                row[c] = mean_std(list(cells.get((method, lab, c), {}).values()))
            table.append(row)
            if lab == "hard" or not any((method, "hard", c) in cells for c in columns):
                continue
            gain: dict[str, Any] = {"method": f"  gain of {lab} (paired)"}
            for c in columns:
                base, treat = cells.get((method, "hard", c), {}), cells.get((method, lab, c), {})
                seeds = sorted(set(base) & set(treat))
                mean, half = ci95([treat[s] - base[s] for s in seeds]) if seeds else (math.nan, math.nan)
                gain[c] = "–" if not seeds else f"{mean:+.2f} ± {half:.2f} (n={len(seeds)})"
            table.append(gain)
    return [{"columns": ["method", *columns]}] + table


def _fmt(cell: Any) -> str:
    if isinstance(cell, tuple):
        mean, std, n = cell
        return "–" if n == 0 else f"{mean:.2f} ± {std:.2f}"
    return str(cell)


def markdown(table: list[dict[str, Any]], columns: list[str]) -> str:
    if not table:
        return "(no completed runs)\n"
    head = [SHORT.get(c, c) for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, table: list[dict[str, Any]], columns: list[str]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        triple = {c: bool(table) and isinstance(table[0].get(c), tuple) for c in columns}
        header = []
        for c in columns:
            header += [f"{c}_mean", f"{c}_std", f"{c}_n"] if triple[c] else [c]
        w.writerow(header)
        for row in table:
            line = []
            for c in columns:
                v = row.get(c, "")
                # a gain row holds one text cell in a mean/std/n column: keep the columns aligned
                line += list(v) if isinstance(v, tuple) else [v, "", ""] if triple[c] else [v]
            w.writerow(line)


def figures(folder: Path, rows: list[dict[str, Any]], by: list[str], metric: str) -> list[Path]:
    """α × β heat-map, accuracy vs buffer size, accuracy vs wall-clock (unroll sweep), when those vary."""
    from matplotlib.figure import Figure  # not pyplot: no global backend switch (notebooks keep theirs)

    made = []
    done = [r for r in rows if r.get("status") == "completed"]
    if {"alpha", "beta"} <= set(by):
        alphas = sorted({r["alpha"] for r in done})
        betas = sorted({r["beta"] for r in done})
        grid = np.full((len(alphas), len(betas)), np.nan)
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                vals = [r[f"final.{metric}"] for r in done if r["alpha"] == a and r["beta"] == b]
                if vals:
                    grid[i, j] = np.mean(vals)
        fig = Figure(figsize=(1.5 + 0.9 * len(betas), 1.2 + 0.6 * len(alphas)))
        ax = fig.subplots()
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(betas)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(betas)), [str(b) for b in betas])
        ax.set_yticks(range(len(alphas)), [str(a) for a in alphas])
        ax.set_xlabel("beta (DDN EMA)")
        ax.set_ylabel("alpha (soft-label weight)")
        ax.set_title(f"{metric} (mean over seeds)")
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        made.append(folder / "alpha_beta_heatmap.png")
        fig.savefig(made[-1], dpi=120)
    if "buffer" in by:
        fig = Figure(figsize=(5, 3.5))
        ax = fig.subplots()
        series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in done:
            series[f"{r.get('baseline.name')} / {r.get('labels')}"][r["buffer"]].append(r[f"final.{metric}"])
        for name, pts in sorted(series.items()):
            xs = sorted(pts)
            ax.errorbar(xs, [np.mean(pts[x]) for x in xs], yerr=[np.std(pts[x]) for x in xs], marker="o",
                        label=name, capsize=3)
        ax.set_xscale("log")
        ax.set_xlabel("buffer size")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
        fig.tight_layout()
        made.append(folder / "accuracy_vs_buffer.png")
        fig.savefig(made[-1], dpi=120)
    if {"ddn.unroll_steps", "ddn.unroll_scope"} & set(by):
        fig = Figure(figsize=(5, 3.5))
        ax = fig.subplots()
        for r in done:
            ax.scatter(r["wall_clock_s"], r[f"final.{metric}"], s=14)
            ax.annotate(f"K={r.get('ddn.unroll_steps')} {r.get('ddn.unroll_scope')}"
                        f"{' 1st' if r.get('ddn.first_order') else ''}", (r["wall_clock_s"], r[f"final.{metric}"]),
                        fontsize=6)
        ax.set_xlabel("wall-clock (s)")
        ax.set_ylabel(metric)
        fig.tight_layout()
        made.append(folder / "accuracy_vs_wallclock.png")
        fig.savefig(made[-1], dpi=120)
    with_matrix = [r for r in done if r.get("matrix") and r.get(f"final.{metric}") is not None]
    if with_matrix:  # the best run's accuracy matrix (the only run's, for a run folder)
        best = max(with_matrix, key=lambda r: r[f"final.{metric}"])
        R = np.array(best["matrix"], dtype=float)
        fig = accuracy_heatmap(R, f"class-IL, best run: {Path(best['path']).name}")
        made.append(folder / "accuracy_matrix.png")
        fig.savefig(made[-1], dpi=120)
    return made


def report(folder: str | Path, metrics: list[str] | None = None, extra_keys: list[str] | None = None) -> str:
    """Write report.md / report.csv (and figures) into ``folder``; returns the Markdown."""
    folder = Path(folder)
    rows = collect(folder)
    if not rows:
        raise SystemExit(f"error: no {RESULTS_FILE} found under {folder}: point src.report at a run or sweep folder")
    # the mean over each task's rarest class, for sweeps over dataset.imbalance_ratio
    varied = varying(rows, ["dataset.imbalance_ratio"])
    metrics = metrics or METRICS + (["rare_class_il"] if varied or any(
        r.get("dataset.imbalance_ratio") not in (None, 1) for r in rows) else [])
    rows = fill_defaults(rows)
    by = design_keys(rows, extra_keys)
    table = aggregate(rows, by, metrics)
    cols = by + metrics + ["seeds"]
    md = [f"# Report: {folder}", "", f"{len(rows)} runs ({sum(r.get('status') == 'completed' for r in rows)} "
          f"completed); metrics are final accuracies (%) after the last task, mean ± std over seeds.", "",
          markdown(table, cols)]
    failed = [r for r in rows if r.get("status") != "completed"]
    if failed:
        md += ["", f"Failed or diverged runs: {len(failed)}", ""]
        md += [f"- {r['path']}: {r.get('status')}" for r in failed]
    if "labels" in by:
        gains = paired_gain(rows, by, metrics[0])
        if gains:
            keys = [k for k in by if k != "labels"]
            md += ["", f"## Paired gain over labels=hard ({metrics[0]}, same seeds; ± is the 95% t-interval)", "",
                   markdown([{**g, "gain": f"{g['gain']:+.2f} ± {g['ci95']:.2f}"} for g in gains],
                            keys + ["treatment", "gain", "n"])]
    paper = paper_table(rows, by, metrics[0])
    if paper:
        columns = paper[0]["columns"]
        md += ["", f"## Paper table ({metrics[0]}, mean ± std over seeds; columns: "
                   f"{' / '.join(SHORT.get(k, k) for k in PAPER_COLS if k in by) or 'all runs'})", "",
               markdown(paper[1:], columns)]
        write_csv(folder / "report_paper.csv", paper[1:], columns)
    for fig in figures(folder, rows, by, metrics[0]):
        md += ["", f"![{fig.stem}]({fig.name})"]
    text = "\n".join(md) + "\n"
    (folder / "report.md").write_text(text)
    write_csv(folder / "report.csv", table, cols[:-1])
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--metrics", nargs="+", default=None, help=f"keys of results.json 'final' (default {METRICS})")
    ap.add_argument("--by", nargs="*", default=None, help="extra config keys to group by (dotted)")
    args = ap.parse_args(argv)
    print(report(args.folder, args.metrics, args.by))


if __name__ == "__main__":
    sys.exit(main())
