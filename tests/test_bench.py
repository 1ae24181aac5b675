"""The benchmark scripts must not rot: bench/cost.py's measurement on the embedded dataset, a few steps."""
from __future__ import annotations

import importlib.util
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
