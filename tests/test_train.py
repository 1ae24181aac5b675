"""End-to-end runs through the real config composition, on the embedded dataset (2 tasks)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.results import cpu_id
from src.train import train


@pytest.mark.parametrize("baseline", ["er", "finetune"])
def test_two_task_run_writes_results_and_tensorboard(cfg_factory, baseline):
    cfg = cfg_factory(f"baseline={baseline}", "buffer=50")
    payload = train(cfg)
    out = cfg.output_dir
    saved = json.loads(open(f"{out}/results.json").read())
    assert saved["status"] == "completed"
    R = np.array(saved["accuracy_matrices"]["net"]["class_il"], dtype=float)
    assert R.shape == (2, 2) and np.isnan(R[0, 1]) and not np.isnan(R[1]).any()
    f = saved["final"]
    assert f["class_il"] == pytest.approx(R[1].mean())
    assert f["forgetting"] == pytest.approx(max(R[0, 0], R[1, 0]) - R[1, 0])
    assert 0 <= f["class_il"] <= f["task_il"] <= 100
    assert saved["config"]["baseline"]["name"] == baseline
    assert saved["samples_per_s"] > 0 and saved["versions"]["torch"]
    assert saved["versions"]["cpu"] and saved["versions"]["cpu_capability"]  # bit-exact reruns need the same kernels
    assert saved["versions"]["cpu_id"] == cpu_id()
    assert saved["versions"]["torch_threads"] == torch.get_num_threads()  # ... and the same thread count
    assert payload["final"] == saved["final"]
    tb = list(Path(out).rglob("events.out.tfevents*"))
    assert tb, "TensorBoard event file missing"


def test_cpu_id_reads_the_first_processor(tmp_path):
    """versions.cpu_id: vendor family/model/stepping of the first block of cpuinfo; ``?`` without one."""
    info = tmp_path / "cpuinfo"
    block = "processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: {m}\n" \
            "model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 2\n"
    info.write_text(block.format(n=0, m=207) + "\n" + block.format(n=1, m=143))
    assert cpu_id(info) == "GenuineIntel 6/207/2"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n")
    assert cpu_id(info) == "AuthenticAMD ?/?/?"
    assert cpu_id(tmp_path / "absent") == "?"


def test_same_seed_same_result_and_other_seed_differs(cfg_factory):
    a = train(cfg_factory("buffer=30", "logger=none", out="a"))
    b = train(cfg_factory("buffer=30", "logger=none", out="b"))
    c = train(cfg_factory("buffer=30", "logger=none", "seed=1", out="c"))
    def R(p):
        return p["accuracy_matrices"]["net"]["class_il"]

    assert np.array_equal(R(a), R(b), equal_nan=True)
    assert not np.array_equal(R(a), R(c), equal_nan=True)


def test_er_beats_finetune_on_old_task(cfg_factory):
    er = train(cfg_factory("buffer=200", "logger=none", out="er"))
    ft = train(cfg_factory("baseline=finetune", "logger=none", out="ft"))
    assert er["final"]["class_il"] > ft["final"]["class_il"]
    assert er["final"]["forgetting"] < ft["final"]["forgetting"]


def test_tensorboard_has_accuracy_scalars_heatmap_and_hparams(cfg_factory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = cfg_factory("buffer=50")
    train(cfg)
    files = list(Path(cfg.output_dir).rglob("events.out.tfevents*"))
    tags = {"scalars": set(), "images": set()}
    for f in files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        for kind in tags:
            tags[kind] |= set(acc.Tags().get(kind, []))
    assert {"eval/class_il_task0", "eval/class_il_acc", "eval/class_il_forgetting", "train/loss_total",
            "train/samples_per_s"} <= tags["scalars"]
    assert "accuracy_matrix/class_il" in tags["images"]
