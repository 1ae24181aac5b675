"""Kill-and-resume (the Avalanche pattern): a run killed with SIGKILL mid-task and resumed ends exactly
like the uninterrupted run: same accuracy matrices, same buffer, same DDN."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, run_cli

RUN = ["baseline=clser", "labels=ddn", "buffer=60", "dataset.classes_per_task=5", "setting.epochs=3",
       "checkpoint.every_n_steps=7", "diagnostics.align_every=5", "trainer.enable_progress_bar=false", "logger=none"]


def _final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["learner"]


def test_sigkill_mid_task_then_resume_is_exact(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a = run_cli([*RUN, f"hydra.run.dir={a_dir}"], cwd=ROOT)
    assert a.returncode == 0, a.stderr[-2000:]

    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "src.train", *RUN, f"hydra.run.dir={b_dir}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = b_dir / "checkpoints" / "last.json"
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if info.exists():
            pos = json.loads(info.read_text())
            if pos["task"] == 1 and (pos["epoch"], pos["batch"]) > (0, 0):  # mid second task
                proc.send_signal(signal.SIGKILL)
                killed_at = pos
                break
        time.sleep(0.02)
    proc.wait()
    assert killed_at is not None, "the run ended before it could be killed mid-task"
    assert not (b_dir / "results.json").exists()

    resumed = run_cli([f"resume={b_dir}", f"hydra.run.dir={tmp_path / 'resume_invocation'}"], cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ra = json.loads((a_dir / "results.json").read_text())
    rb = json.loads((b_dir / "results.json").read_text())
    for model, mats in ra["accuracy_matrices"].items():
        for key in ("class_il", "task_il"):
            assert np.array_equal(np.array(mats[key], dtype=float),
                                  np.array(rb["accuracy_matrices"][model][key], dtype=float), equal_nan=True)
    assert ra["final"] == rb["final"] and ra["steps"] == rb["steps"]
    assert ra["gradient_alignment"]["n"] > 3 and ra["gradient_alignment"] == rb["gradient_alignment"]
    sa, sb = _final_state(a_dir), _final_state(b_dir)
    for key in ("buffer.examples", "buffer.labels", "buffer.logits", "buffer.num_seen",
                "labels.label_net.mlp.0.weight", "labels.ema.mlp.0.weight", "method.stable.head.weight"):
        assert torch.equal(sa[key], sb[key]), key


def test_resume_refuses_a_changed_config(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(["buffer=30", "logger=none", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"],
                    cwd=ROOT)
    assert first.returncode == 0
    again = run_cli([f"resume={run_dir}", "baseline=der", "buffer=50", f"hydra.run.dir={tmp_path / 'x'}"], cwd=ROOT)
    assert again.returncode != 0
    assert "buffer: saved 30 -> now 50" in again.stderr and "baseline:" in again.stderr
    assert not (tmp_path / "x").exists()


def test_resume_of_a_folder_without_checkpoint(tmp_path):
    proc = run_cli([f"resume={tmp_path}", f"hydra.run.dir={tmp_path / 'x'}"], cwd=ROOT)
    assert proc.returncode != 0 and "has no checkpoints/last.ckpt" in proc.stderr


def test_checkpoint_is_weights_only_and_complete(cfg_factory):
    from src.train import train

    cfg = cfg_factory("labels=l2y", "buffer=30", "logger=none", "checkpoint.every_n_steps=5")
    train(cfg)
    ckpt = torch.load(f"{cfg.output_dir}/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["position"] == [2, 0, 0]  # after the last of 2 tasks
    assert {"config", "learner", "optimizer", "record", "rng", "counters"} <= set(ckpt)
    assert "labels.slot_logits" in ckpt["learner"] and "buffer._extra_state" in ckpt["learner"]
    assert ckpt["config"]["labels"] == "l2y"


def test_bench_continues_an_unfinished_run_only_with_its_own_config(cfg_factory):
    """bench/run.py's rerun of a suite: a run folder with a checkpoint but no results continues from it."""
    import copy
    import shutil

    from src.checkpoint import load_unfinished
    from src.config_check import ConfigError
    from src.train import train

    cfg = cfg_factory("labels=ddn", "buffer=30", "logger=none", "checkpoint.every_n_steps=5")
    assert load_unfinished(cfg) is None  # nothing there yet: the suite starts the run
    done = train(cfg)
    (Path(cfg.output_dir) / "results.json").unlink()  # as if killed after its last checkpoint
    ckpt = load_unfinished(cfg)
    assert ckpt is not None and ckpt["position"] == [2, 0, 0]
    again = train(cfg, ckpt)
    assert again["final"] == done["final"] and again["steps"] == done["steps"]
    for model, mats in done["accuracy_matrices"].items():
        for key in ("class_il", "task_il"):
            assert np.array_equal(np.array(mats[key], dtype=float),
                                  np.array(again["accuracy_matrices"][model][key], dtype=float), equal_nan=True)

    changed = copy.deepcopy(cfg)
    changed.alpha = 0.3
    with pytest.raises(ConfigError, match=r"different config \(.*alpha.*\): delete that folder"):
        load_unfinished(changed)
    shutil.rmtree(Path(cfg.output_dir) / "checkpoints")
    assert load_unfinished(cfg) is None
