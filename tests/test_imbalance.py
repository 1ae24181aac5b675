"""Long-tailed tasks: the exact kept counts, the seeded profile, per-class accuracy in results, the sweep."""
import json

import pytest
import torch

from src.data.imbalance import class_ranks, long_tail_indices
from src.report import report
from src.train import build, train
from tests.conftest import ROOT, run_cli


def test_profile_keeps_exact_exponential_shares_per_task():
    y = torch.arange(6).repeat_interleave(100)  # 3 tasks x 2 classes, 100 samples each
    keep = long_tail_indices(y, classes_per_task=2, ratio=10, seed=0)
    counts = torch.bincount(y[keep], minlength=6)
    ranks = class_ranks(6, 2, seed=0)
    assert counts.tolist() == [100 if r == 0 else 10 for r in ranks.tolist()]
    # 3 classes per task: rank r keeps 100 * 50^(-r/2) -> 100, 14 (14.14), 2
    y3 = torch.arange(3).repeat_interleave(100)
    k3 = torch.bincount(y3[long_tail_indices(y3, 3, ratio=50, seed=1)], minlength=3)
    r3 = class_ranks(3, 3, seed=1).tolist()
    assert [k3[c].item() for c in sorted(range(3), key=lambda c: r3[c])] == [100, 14, 2]
    assert torch.equal(keep, long_tail_indices(y, 2, 10, seed=0))  # seeded
    assert len({tuple(class_ranks(10, 2, s).tolist()) for s in range(5)}) > 1  # the seed picks the rarest
    assert torch.equal(long_tail_indices(y, 2, 1, seed=0), torch.arange(600))  # ratio 1 keeps all


def test_results_carry_per_class_accuracy_and_rare_class_mean(cfg_factory):
    cfg = cfg_factory("logger=none", "dataset.imbalance_ratio=10")
    res = train(cfg)
    pc = res["per_class"]
    assert len(pc["class_il"]) == len(pc["train_count"]) == 10
    ranks = class_ranks(10, 5, seed=0)  # FAST: 2 tasks x 5 classes
    rare = [c for c in range(10) if ranks[c] == 4]
    assert all(pc["train_count"][c] < min(pc["train_count"][d] for d in range(10) if ranks[d] == 0) for c in rare)
    assert res["final"]["rare_class_il"] == pytest.approx(sum(pc["class_il"][c] for c in rare) / len(rare))
    # per task, the test-count-weighted mean of its classes' accuracies is the task's class-IL accuracy
    stream, _ = build(cfg)
    counts = torch.bincount(stream.test_y, minlength=10).double()
    acc = torch.tensor(pc["class_il"], dtype=torch.double)
    last_row = res["accuracy_matrices"][res["reported_model"]]["class_il"][-1]
    for t in range(2):
        c = slice(5 * t, 5 * t + 5)
        assert (acc[c] * counts[c]).sum().item() / counts[c].sum().item() == pytest.approx(last_row[t], abs=1e-4)


def test_imbalance_sweep_reports_rare_class_accuracy(tmp_path):
    sweep = tmp_path / "imb"
    proc = run_cli(["-m", "+sweeps=imbalance", "dataset.imbalance_ratio=1,10", "dataset.classes_per_task=5", "logger=none",
                    "trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}"], cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep.glob("*/results.json"))) == 4
    md = report(sweep)
    assert "rare_class_il" in md and "dataset.imbalance_ratio" in md
    res = [json.loads(p.read_text()) for p in sweep.glob("*/results.json")]
    assert {r["config"]["dataset"]["imbalance_ratio"] for r in res} == {1, 10}
