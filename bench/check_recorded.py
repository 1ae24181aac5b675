"""Do the runs under bench/out give the figures BENCHMARKS.md records? ``python bench/check_recorded.py [OUT]``

``bench/recorded.csv`` holds, one row per run and recording CPU, the final class-IL accuracy that a section of
BENCHMARKS.md quotes for it, with the section, the run's place (``<suite>/<tag>/seed<k>``: the ``--out`` folder, run
folder and seed of its ``bench/run.py`` command) and the CPU it was recorded on (``AMD`` or ``Intel``, as
``versions.cpu`` names it); a run recorded on both CPUs has a row for each. For every recorded run found under OUT
(default ``bench/out``, e.g. a clean clone's) this prints the recorded and the new figure, each with its CPU (and
the new run's ``versions.cpu_id``, where it has one), and whether they are equal to the hundredth, against the row
of the CPU it ran on where there is one (else against the other's); then one line per section, and one per arm rerun
on another CPU: the recorded and the new mean ± sd over the seeds it reran, and the mean shift with its 95%
t-interval. A rerun on the recording CPU at one thread (``bench/run.py``'s default) should be equal; on another CPU
the math kernels differ and a run may move (BENCHMARKS, header and section 7), which is reported, not failed: there
only the means can agree.
Exits 1 when a run on its recording CPU differs, or when no recorded run is found.

``bench/reruns.csv`` is the ledger of those checks: one row per recorded run rerun on its recording CPU (vendor, and
``versions.cpu_id`` where the run had one) and found equal, with the date. ``--ledger SINCE`` adds this check's equal
runs that finished at or after SINCE (an ISO time: the start of the rerun batch, so that the recording itself, which
may lie in the same OUT, is not counted as its own rerun; a row of ``recorded.csv`` first written from a run made
after SINCE cannot be told from a rerun and is left out by hand). ``--status`` prints, per section, how many recorded
runs have been rerun so and which seeds have not (it reads no OUT).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "bench" / "recorded.csv"
LEDGER = ROOT / "bench" / "reruns.csv"
LEDGER_FIELDS = ["section", "suite", "tag", "seed", "cpu", "cpu_id", "date"]
sys.path.insert(0, str(ROOT))
from src.report import ci95, mean_std  # noqa: E402
from src.results import RESULTS_FILE  # noqa: E402


def recorded(path: Path = RECORDED) -> list[dict]:
    """The rows of ``recorded.csv`` (``seed`` an int, ``class_il`` a float)."""
    with path.open(newline="") as f:
        return [{**r, "seed": int(r["seed"]), "class_il": float(r["class_il"])} for r in csv.DictReader(f)]


def reruns(path: Path = LEDGER) -> list[dict]:
    """The rows of ``reruns.csv`` (``seed`` an int)."""
    with path.open(newline="") as f:
        return [{**r, "seed": int(r["seed"])} for r in csv.DictReader(f)]


def run_path(row: dict) -> str:
    return f"{row['suite']}/{row['tag']}/seed{row['seed']}"


def spread(values: list[float]) -> str:
    """``mean ± sd`` to the hundredth; the value alone for one."""
    m, sd, n = mean_std(values)
    return f"{m:.2f} ± {sd:.2f}" if n > 1 else f"{m:.2f}"


def check(out: Path, rows: list[dict], confirmed: list[dict] | None = None) -> tuple[list[str], int, int]:
    """Report lines (Markdown), the number of recorded runs found and the number that differ on their CPU; each run
    equal on its recording CPU is appended to ``confirmed`` as a ledger row."""
    lines = ["| section | run | recorded (CPU) | now (CPU) | equal |", "|---|---|---|---|---|"]
    per_section: dict[str, Counter] = defaultdict(Counter)
    elsewhere: dict[tuple, list[tuple[float, float]]] = defaultdict(list)  # arm -> (recorded, now) off its CPU
    cpus_of: dict[str, set[str]] = defaultdict(set)  # run -> the CPUs it was recorded on
    for row in rows:
        cpus_of[run_path(row)].add(row["cpu"].lower())
    checked: set[str] = set()
    for row in rows:
        f = out / run_path(row) / RESULTS_FILE
        if run_path(row) in checked or not f.is_file():
            continue
        result = json.loads(f.read_text())
        now = (result.get("final") or {}).get("class_il")
        v = result.get("versions") or {}
        cpu = v.get("cpu", "?")
        same_cpu = row["cpu"].lower() in cpu.lower()
        if not same_cpu and any(c in cpu.lower() for c in cpus_of[run_path(row)]):
            continue  # recorded on this run's CPU too: checked against that row
        checked.add(run_path(row))
        if "cpu_id" in v:  # family/model/stepping, which tells two generations of one vendor apart
            cpu += f", {v['cpu_id']}"
        equal = now is not None and round(now, 2) == round(row["class_il"], 2)
        per_section[row["section"]].update(found=1, equal=int(equal), same_cpu=int(same_cpu),
                                           moved=int(same_cpu and not equal))
        if same_cpu and equal and confirmed is not None:
            confirmed.append({**{k: row[k] for k in LEDGER_FIELDS[:5]},  # the run and its CPU
                              "cpu_id": v.get("cpu_id", ""), "finished_at": str(result.get("finished_at") or "")})
        if not same_cpu and now is not None:
            elsewhere[(row["section"], row["suite"], row["tag"], row["cpu"])].append((row["class_il"], now))
        shown = "–" if now is None else f"{now:.2f}"
        verdict = "yes" if equal else ("**no**" if same_cpu else "no (another CPU)")
        lines.append(f"| {row['section']} | {run_path(row)} | {row['class_il']:.2f} ({row['cpu']}) | {shown} ({cpu}) "
                     f"| {verdict} |")
    lines.append("")
    for section, c in sorted(per_section.items()):
        lines.append(f"section {section}: {c['equal']} of {c['found']} equal; {c['same_cpu']} on the recording CPU"
                     + (f", {c['moved']} of them differ" if c["moved"] else ""))
    for (section, suite, tag, cpu), pairs in sorted(elsewhere.items()):
        many = len(pairs) > 1
        shift, half = ci95([b - a for a, b in pairs])
        lines.append(f"section {section}, {suite}/{tag} on another CPU: {len(pairs)} seed{'s' * many}, recorded "
                     f"{spread([a for a, _ in pairs])} ({cpu}), now {spread([b for _, b in pairs])}, "
                     f"shift {shift:+.2f}" + (f" ± {half:.2f}" if many else " (one seed)"))
    total = sum(per_section.values(), Counter())
    lines.append(f"{total['found']} of {len(cpus_of)} recorded runs found under {out}")
    return lines, total["found"], total["moved"]


def add_to_ledger(confirmed: list[dict], since: str, path: Path = LEDGER) -> int:
    """Append the confirmed runs finished at or after ``since`` that the ledger lacks (the same run on the same
    ``cpu_id``); the number added."""
    started = path.is_file() and path.stat().st_size > 0  # a header-only ledger keeps its one header
    have = {(run_path(r), r["cpu_id"]) for r in reruns(path)} if started else set()
    new = [{**{k: r[k] for k in LEDGER_FIELDS[:-1]}, "date": r["finished_at"][:10]} for r in confirmed
           if r["finished_at"] >= since and (run_path(r), r["cpu_id"]) not in have]
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, LEDGER_FIELDS)
        if not started:
            w.writeheader()
        w.writerows(new)
    return len(new)


def seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``0-2, 5, 7-8``."""
    spans: list[list[int]] = []
    for k in sorted(seeds):
        if spans and k == spans[-1][1] + 1:
            spans[-1][1] = k
        else:
            spans.append([k, k])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def status(rows: list[dict], ledger: list[dict]) -> tuple[list[str], Counter]:
    """Per section and recording CPU: recorded runs, how many are rerun on that CPU (in ``ledger``), and the seeds
    of each arm that are not; then the totals. Also returns the counts (``runs``, ``rerun`` and, per CPU,
    ``runs <cpu>`` and ``rerun <cpu>``)."""
    done = {(run_path(r), r["cpu"]) for r in ledger}
    todo: dict[tuple, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    counts: Counter = Counter()
    per_section: dict[tuple, Counter] = defaultdict(Counter)
    for r in rows:
        key = (r["section"], r["cpu"])
        rerun = (run_path(r), r["cpu"]) in done
        for c in (counts, per_section[key]):
            c.update({"runs": 1, "rerun": int(rerun), f"runs {r['cpu']}": 1, f"rerun {r['cpu']}": int(rerun)})
        if not rerun:
            todo[key][(r["suite"], r["tag"])].append(r["seed"])
    lines = []
    for (section, cpu), c in sorted(per_section.items()):
        lines.append(f"section {section} ({cpu}): {c['rerun']} of {c['runs']} rerun on their CPU")
        lines += [f"  not yet: {suite}/{tag} seeds {seed_ranges(seeds)}"
                  for (suite, tag), seeds in sorted(todo[(section, cpu)].items())]
    by_cpu = "; ".join(f"{cpu} {counts[f'rerun {cpu}']} of {counts[f'runs {cpu}']}"
                       for cpu in sorted({r["cpu"] for r in rows}))
    lines.append(f"{counts['rerun']} of {counts['runs']} recorded runs rerun on their CPU and equal ({by_cpu}); "
                 f"{counts['runs'] - counts['rerun']} not yet")
    return lines, counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="?", default=ROOT / "bench" / "out")
    p.add_argument("--ledger", metavar="SINCE", help=f"add the runs found equal on their CPU and finished at or after "
                   f"SINCE (ISO time, e.g. 2026-12-06T15:00) to {LEDGER.name}")
    p.add_argument("--status", action="store_true", help="print which recorded runs are rerun (reads no OUT)")
    args = p.parse_args(argv)
    if args.ledger:
        try:  # normalised, so that `2026-12-06 15:00` or a date alone compares right with finished_at's text
            args.ledger = datetime.fromisoformat(args.ledger).isoformat()
        except ValueError:
            sys.exit(f"--ledger {args.ledger}: not an ISO time; give the start of the rerun batch, "
                     "e.g. 2026-12-06T15:00")
    if args.status:
        print("\n".join(status(recorded(), reruns())[0]))
        return 0
    if not args.out.is_dir():
        sys.exit(f"{args.out}: not a folder; give the bench/out folder of a checkout that ran the suites")
    confirmed: list[dict] = []
    lines, found, failed = check(args.out, recorded(), confirmed)
    print("\n".join(lines))
    if args.ledger and not failed:  # a run that moved on its CPU is a finding to read first, not a ledger row
        print(f"{add_to_ledger(confirmed, args.ledger)} of {len(confirmed)} equal runs added to {LEDGER}")
    return 0 if found and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
