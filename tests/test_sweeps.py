"""Sweeps through the real CLI: a grid, an Optuna study in SQLite, a failing trial that does not stop it, two
workers sharing one study, and an interrupted sweep that resumes."""
import json
import os
import re
import signal
import subprocess
import sys
import time

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


def _sweep_cmd(sweep, n_trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "src.train", "-m", "+sweeps=alpha_beta_optuna", f"hydra.sweeper.n_trials={n_trials}",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3", *SMALL, *extra,
            f"hydra.sweep.dir={sweep}"]


def _popen(cmd: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def _study(sweep) -> optuna.Study:
    return optuna.load_study(study_name="alpha_beta", storage=f"sqlite:///{sweep}/optuna.db")


def test_two_workers_share_one_study_exactly_n_trials(tmp_path):
    sweep = tmp_path / "sweep"
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    workers = [_popen(_sweep_cmd(sweep, 6), log) for log in logs]
    for w in workers:
        assert w.wait(timeout=600) == 0, (tmp_path / "worker0.log").read_text()[-3000:]
    study = _study(sweep)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6  # none lost, none run twice
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 6
    # every complete trial has its own folder with its own results; no other folder has results
    folders = sorted(p.parent.name for p in sweep.glob("*/results.json"))
    assert folders == sorted(f"trial_{t.number}" for t in complete)
    ran = [int(re.search(r"This worker ran (\d+) trials", (tmp_path / f"worker{i}.log").read_text()).group(1))
           for i in range(2)]
    assert sum(ran) == 6 and min(ran) >= 1, ran


def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path):
    sweep = tmp_path / "sweep"
    with open(tmp_path / "first.log", "w") as log:
        first = _popen(_sweep_cmd(sweep, 3), log)
        deadline = time.time() + 300
        while not (sweep / "trial_1").exists():  # kill it while its second trial runs
            assert first.poll() is None and time.time() < deadline, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/results.json")}
    assert list(done_before) == ["trial_0"]
    killed = _study(sweep).trials[1]
    assert killed.state == optuna.trial.TrialState.RUNNING

    proc = run_cli(_sweep_cmd(sweep, 3)[3:], cwd=ROOT)  # restarted at once: waits for the trial to go stale
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _study(sweep).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 3 and states[1] == "FAIL"
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 1)
    assert retry.state.name == "COMPLETE" and retry.params == killed.params
    assert (sweep / "trial_0" / "results.json").stat().st_mtime_ns == done_before["trial_0"]  # not redone
    assert "This worker ran 2 trials" in proc.stderr + proc.stdout


def test_workers_started_together_both_open_a_new_sqlite_storage(tmp_path):
    # two workers creating the schema of one new SQLite file at the same instant: without the retry in
    # SharedStudyImpl._storage the loser dies on alembic's UNIQUE constraint (seen in CI)
    import subprocess
    import time

    code = ("import sys, time, types; from hydra_plugins.ddn_cl_sweeper.shared_study_sweeper import SharedStudyImpl; "
            "me = types.SimpleNamespace(storage=sys.argv[1], heartbeat_interval=5, grace_period=20); "
            "t = float(sys.argv[2])\nwhile time.time() < t: pass\nSharedStudyImpl._storage(me)")
    for i in range(2):
        start = str(time.time() + 4)
        url = f"sqlite:///{tmp_path}/race{i}.db"
        procs = [subprocess.Popen([sys.executable, "-c", code, url, start], cwd=ROOT, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
