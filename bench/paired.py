"""Paired gains of every run folder of a suite against a base folder: ``python bench/paired.py SUITE BASE [METRIC]``.

BASE is a run folder of the suite (``er_hard``) or of another suite (``cifar_online_aug/er_hard_augment-true``:
the runs of an ``--out`` variant against the base arm they share seeds with). Pairs by seed
(``<suite>/<tag>/seed<k>/results.json``); prints the mean, the paired gain's mean ± 95% t-interval, its
per-seed values and n, Markdown.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from src.report import ci95  # noqa: E402


def load(folder: Path, metric: str) -> dict[str, float]:
    """{seed folder name: final metric} of the completed runs under ``folder``."""
    out = {}
    for f in folder.glob("seed*/results.json"):
        r = json.loads(f.read_text())
        if r["status"] == "completed":
            out[f.parent.name] = r["final"][metric]
    return out


def rows(suite: Path, base: Path, metric: str = "class_il") -> list[dict]:
    """One row per run folder of ``suite`` (other than ``base``) sharing seeds with ``base``: its mean over the
    shared seeds, the paired gain's mean and 95% half-width, and the per-seed gains in seed order."""
    ref = load(base, metric)
    out = []
    for folder in sorted(p for p in suite.iterdir() if p.is_dir() and p.resolve() != base.resolve()):
        vals = load(folder, metric)
        seeds = sorted(set(vals) & set(ref), key=lambda s: int(s.removeprefix("seed")))
        if not seeds:
            continue
        gains = [vals[s] - ref[s] for s in seeds]
        g, half = ci95(gains)
        out.append({"tag": folder.name, "n": len(seeds), "mean": sum(vals[s] for s in seeds) / len(seeds),
                    "gain": g, "half": half, "gains": gains})
    return out


def markdown(table: list[dict], base_name: str, metric: str) -> str:
    lines = [f"| run | {metric} (mean) | paired gain vs {base_name} (95% CI) | per seed | n |", "|---|---|---|---|---|"]
    for r in table:
        per_seed = ", ".join(f"{x:+.2f}" for x in r["gains"])
        lines.append(f"| {r['tag']} | {r['mean']:.2f} | {r['gain']:+.2f} ± {r['half']:.2f} | {per_seed} | {r['n']} |")
    return "\n".join(lines)


def main() -> None:
    suite, base_name = OUT / sys.argv[1], sys.argv[2]
    metric = sys.argv[3] if len(sys.argv) > 3 else "class_il"
    base = OUT / base_name if "/" in base_name else suite / base_name
    if not base.is_dir():
        sys.exit(f"paired.py: no run folder {base}; BASE is a tag of {suite.name} or SUITE/TAG under bench/out")
    print(markdown(rows(suite, base, metric), base_name, metric))


if __name__ == "__main__":
    main()
