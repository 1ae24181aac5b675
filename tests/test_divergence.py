"""A NaN loss stops the run at once, names task and step, and never reports accuracy of a NaN model."""
import json

from src.train import train
from tests.conftest import ROOT, run_cli


def test_divergence_stops_and_keeps_last_good_metrics(cfg_factory):
    # lr=1e6 only from the second task on would need a schedule; a huge lr diverges within task 0 instead
    out = train(cfg_factory("optimizer.lr=1e6", "logger=none"))
    assert out["status"] == "diverged"
    assert "task 0" in out["error"] and "step" in out["error"]
    assert out["final"] == {}  # no task finished: no metrics at all, certainly none from a NaN model


def test_divergence_in_a_later_task_keeps_earlier_rows(cfg_factory, monkeypatch):
    import src.learner as learner_mod

    real = learner_mod.ContinualLearner.training_step

    def step(self, batch, idx):
        if int(self.current_task) == 1 and idx == 3:
            raise learner_mod.DivergenceError(1, int(self.total_steps), float("nan"))
        return real(self, batch, idx)

    monkeypatch.setattr(learner_mod.ContinualLearner, "training_step", step)
    out = train(cfg_factory("logger=none"))
    assert out["status"] == "diverged" and "task 1" in out["error"]
    R = out["accuracy_matrices"]["net"]["class_il"]
    assert out["final"]["class_il"] == R[0][0]  # the metrics after task 0, the last good ones


def test_cli_exits_nonzero_and_results_say_diverged(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["optimizer.lr=1e6", "logger=none", f"hydra.run.dir={run_dir}",
                    "trainer.enable_progress_bar=false"], cwd=ROOT)
    assert proc.returncode != 0
    assert "diverged" in proc.stderr
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["status"] == "diverged" and saved["final"] == {}
