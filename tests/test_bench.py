"""The benchmark scripts must not rot: bench/cost.py's measurement on the embedded dataset, a few steps; every run of
bench/run.py's suites and of `make bench` composes and validates."""
from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cost_variants_pair_every_method_with_its_ddn_arm():
    cost = load("cost")
    for m in cost.METHODS:
        assert m in cost.VARIANTS and f"{m}+ddn (head)" in cost.VARIANTS
        assert cost.base_of(f"{m}+ddn (head)") == m
    assert "er+ddn (full)" in cost.VARIANTS


def test_cost_measures_inner_and_outer_step_of_derpp_with_ddn():
    cost = load("cost")
    r = cost.measure(["dataset=seq_digits", *cost.VARIANTS["derpp+ddn (head)"]], steps=4, threads=1)
    assert r["outer_per_step"] > 0 and r["inner_per_step"] > 0
    assert abs(r["s_per_step"] - r["inner_per_step"] - r["outer_per_step"]) < 1e-9
    assert 0 <= r["data_share"] < 1 and r["rss_peak_mib"] > 0


def test_run_refuses_an_only_tag_the_suite_does_not_have(monkeypatch, capsys):
    """A mistyped --only tag used to run nothing and say nothing; it must name the suite's real tags."""
    run = load("run")
    monkeypatch.setattr("sys.argv", ["run.py", "mnist_offline", "--only", "der_hard", "--seeds", "0"])
    with pytest.raises(SystemExit) as exit_:
        run.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--only der_hard: not a run of suite mnist_offline" in err
    assert "der_hard_setting-offline_epochs-5" in err  # the fix: the tag it should have been


@functools.cache
def check_options(overrides: tuple[str, ...]) -> None:
    """Compose a run's config and validate it, without the data-folder check (a fresh clone has no data/;
    make bench extracts it first). Cached: the suites and the recipe repeat runs."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from src.config_check import validate_config

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.dataset.root = None
    validate_config(cfg)


def test_every_benchmark_run_composes_and_passes_validation():
    """A suite names its runs by overrides; a renamed or mistyped key must fail here, not hours into `make bench`."""
    run = load("run")
    for suite, runs in run.SUITES.items():
        tags = [run.tag_of(o) for o in runs()]
        assert len(tags) == len(set(tags)), f"{suite}: two runs share a folder name"
        for overrides in runs():
            check_options((*run.COMMON, "buffer=200", "seed=0", *overrides))


def test_make_bench_names_only_real_suites_tags_and_options():
    """`make bench` runs for hours; a suite, `--only` tag or `--extra` option its recipe mistypes must fail here,
    not when the run is reached."""
    import shlex
    import subprocess

    run = load("run")
    recipe = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    calls = []
    for line in recipe.replace("\\\n", " ").splitlines():
        if "bench/run.py" in line:
            loop = re.match(r"\s*for b in ([^;]+);", line)  # the recipe's buffer loops
            for b in loop.group(1).split() if loop else [""]:
                calls.append(line.split("bench/run.py", 1)[1].split(";")[0].replace("$b", b))
    assert len(calls) > 20
    for call in calls:
        try:  # bench/run.py's own parser: refuses an unknown suite or --only tag
            args = run.parse_args(shlex.split(call))
        except SystemExit:
            pytest.fail(f"make bench: bench/run.py refuses `{call.strip()}` (its reason: captured stderr below)")
        runs = {run.tag_of(o): o for o in run.SUITES[args.suite]()}
        for tag in args.only or runs:
            check_options((*run.COMMON, f"buffer={args.buffer}", "seed=0", *runs[tag], *args.extra))
