"""Sweeps through the real CLI: a grid, an Optuna study in SQLite, a failing trial that does not stop it."""
import json

import optuna
import pytest

from src.report import report
from tests.conftest import ROOT, run_cli

SMALL = ["dataset.classes_per_task=5", "logger=none", "trainer.enable_progress_bar=false"]


def test_optuna_sweep_with_sqlite_storage(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "+sweeps=alpha_beta_optuna", "hydra.sweeper.n_trials=3", *SMALL,
                    f"hydra.sweep.dir={sweep}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="alpha_beta", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    results = sorted(sweep.glob("*/results.json"))
    assert len(results) == 3
    values = sorted(json.loads(p.read_text())["final"]["class_il"] for p in results)
    assert sorted(t.value for t in study.trials) == pytest.approx(values)
    assert (sweep / "optimization_results.yaml").exists()


def test_a_diverging_trial_is_recorded_failed_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    db = f"sqlite:///{tmp_path}/study.db"
    proc = run_cli(["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.direction=maximize", "hydra.sweeper.max_failure_rate=1.0",
                    f"hydra.sweeper.storage={db}", "hydra.sweeper.study_name=diverge",
                    "optimizer.lr=choice(1e6,0.1)", *SMALL, f"hydra.sweep.dir={sweep}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="diverge", storage=db)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/results.json"))
    assert statuses == ["completed", "diverged"]


def test_grid_sweep_and_report(tmp_path):
    sweep = tmp_path / "grid"
    proc = run_cli(["-m", "+sweeps=alpha_beta", "alpha=0.5,1.0", "beta=0.9", "seed=0,1", *SMALL,
                    f"hydra.sweep.dir={sweep}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = report(sweep)
    assert "| alpha | class_il" in md and "[0, 1]" in md
    assert (sweep / "report.csv").exists()
