"""Paired gains of every run folder of a suite against a base folder: ``python bench/paired.py SUITE BASE [METRIC]``.

Pairs by seed (``<suite>/<tag>/seed<k>/results.json``); prints mean ± 95% t-interval and n, Markdown.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.report import ci95  # noqa: E402


def load(folder: Path, metric: str) -> dict[str, float]:
    out = {}
    for f in folder.glob("seed*/results.json"):
        r = json.loads(f.read_text())
        if r["status"] == "completed":
            out[f.parent.name] = r["final"][metric]
    return out


def main() -> None:
    suite, base = Path(ROOT / "bench" / "out" / sys.argv[1]), sys.argv[2]
    metric = sys.argv[3] if len(sys.argv) > 3 else "class_il"
    ref = load(suite / base, metric)
    print(f"| run | {metric} (mean) | paired gain vs {base} (95% CI) | n |")
    print("|---|---|---|---|")
    for tag in sorted(p.name for p in suite.iterdir() if p.is_dir()):
        vals = load(suite / tag, metric)
        seeds = sorted(set(vals) & set(ref))
        if not seeds:
            continue
        mean = sum(vals[s] for s in seeds) / len(seeds)
        g, half = ci95([vals[s] - ref[s] for s in seeds])
        print(f"| {tag} | {mean:.2f} | {g:+.2f} ± {half:.2f} | {len(seeds)} |")


if __name__ == "__main__":
    main()
