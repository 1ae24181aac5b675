"""Gradient-alignment table of a suite run with ``diagnostics.align_every``: ``python bench/alignment.py SUITE``.

Per run folder (``bench/out/<suite>/<tag>/seed<k>/results.json``): class-IL, the run means of cos(g_hard, g_ref)
and cos(g_soft, g_ref) (g: gradient of a replay draw's CE with hard / soft labels at the same θ; g_ref: of
held-out data of all tasks seen), their paired difference soft − hard from the second task on, where the outer
step trains the labels (mean over seeds of each run's mean over those tasks ± 95% t-interval), the
share of checks where the soft label aligned better, soft − hard per task, the descents g · g_ref (first-order
fall of the held-out loss per unit learning rate) and the share of flipped labels; for one replay draw, and
a second table for the whole buffer where the runs measured it.
Markdown on stdout.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import fmean

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.report import ci95  # noqa: E402


def load(folder: Path) -> list[dict]:
    runs = []
    for f in sorted(folder.glob("seed*/results.json")):
        r = json.loads(f.read_text())
        if r["status"] == "completed" and r.get("gradient_alignment"):
            runs.append(r)
    return runs


def rows(suite: Path, suffix: str = "") -> list[dict]:
    """One row per run folder with alignment records; ``suffix`` "" for one replay draw, "_buffer" for the
    whole buffer."""
    out = []
    for tag in sorted(p.name for p in suite.iterdir() if p.is_dir()):
        runs = [r for r in load(suite / tag) if f"align_hard{suffix}" in r["gradient_alignment"]]
        if not runs:
            continue
        ga = [r["gradient_alignment"] for r in runs]
        row = {"tag": tag, "n": len(runs), "class_il": fmean([r["final"]["class_il"] for r in runs]),
               "align_hard": fmean([g[f"align_hard{suffix}"] for g in ga]),
               "descent_hard": fmean([g[f"descent_hard{suffix}"] for g in ga])}
        if all(f"align_soft{suffix}" in g for g in ga):
            # from the second task on: the outer step only trains the labels from there (the first task's
            # label is the initial one in every arm)
            diff, half = ci95([fmean([t[f"soft_minus_hard{suffix}"] for t in g["by_task"] if t["task"] > 0]
                                     or [g[f"soft_minus_hard{suffix}"]]) for g in ga])
            tasks = sorted({t["task"] for g in ga for t in g["by_task"]})
            row.update(align_soft=fmean([g[f"align_soft{suffix}"] for g in ga]), diff=diff, half=half,
                       descent_soft=fmean([g[f"descent_soft{suffix}"] for g in ga]),
                       above=fmean([g[f"soft_above_hard_share{suffix}"] for g in ga]),
                       by_task=[fmean([t[f"soft_minus_hard{suffix}"] for g in ga for t in g["by_task"]
                                       if t["task"] == k]) for k in tasks],
                       flipped=fmean([(r.get("label_diagnostics") or {}).get("argmax_flip_share", 0.0) for r in runs]))
        out.append(row)
    return out


HEADER = ["run", "n", "class-IL", "cos(hard, ref)", "cos(soft, ref)", "soft − hard, tasks 2+ (95% CI)",
          "checks soft > hard", "soft − hard per task", "descent hard / soft", "flipped"]


def markdown(table: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in table:
        cells = [r["tag"], str(r["n"]), f"{r['class_il']:.2f}", f"{r['align_hard']:.3f}"]
        if "align_soft" in r:
            interval = f"{r['diff']:+.4f}" + (f" ± {r['half']:.4f}" if r["n"] > 1 else "")
            cells += [f"{r['align_soft']:.3f}", interval, f"{100 * r['above']:.0f}%",
                      ", ".join(f"{d:+.3f}" for d in r["by_task"]),
                      f"{r['descent_hard']:.4f} / {r['descent_soft']:.4f}", f"{100 * r['flipped']:.1f}%"]
        else:
            cells += ["–", "–", "–", "–", f"{r['descent_hard']:.4f} / –", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python bench/alignment.py SUITE (a folder under bench/out)")
    suite = ROOT / "bench" / "out" / argv[0]
    if not suite.is_dir():
        raise SystemExit(f"error: {suite} does not exist: run `python bench/run.py {argv[0]}` first")
    draw, whole = rows(suite), rows(suite, "_buffer")
    if not draw:
        raise SystemExit(f"error: no completed run under {suite} has gradient-alignment records: "
                         "run it with diagnostics.align_every > 0")
    print("One replay draw (what one inner step trains on)\n\n" + markdown(draw))
    if whole:
        print("\nThe whole buffer (what the steps of a task add up to)\n\n" + markdown(whole))


if __name__ == "__main__":
    main()
