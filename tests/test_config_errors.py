"""Bad input is refused before anything runs, with one line naming the key and the fix."""
from pathlib import Path

import pytest

from src.config_check import ConfigError, validate_config
from tests.conftest import ROOT, run_cli

CASES = [
    (["buffer=-5"], "buffer=-5"),
    (["buffer=2.5"], "buffer=2.5"),
    (["alpha=-1"], "alpha=-1"),
    (["beta=1.0"], "beta=1.0"),
    (["beta=-0.1"], "beta=-0.1"),
    (["optimizer.lr=0"], "optimizer.lr=0"),
    (["setting.batch_size=0"], "setting.batch_size=0"),
    (["setting.buffer_batch_size=-1"], "setting.buffer_batch_size=-1"),
    (["labels=fancy"], "labels='fancy'"),
    (["ddn.unroll_scope=middle"], "ddn.unroll_scope='middle'"),
    (["ddn.unroll_steps=0"], "ddn.unroll_steps=0"),
    (["dataset.classes_per_task=3"], "dataset.classes_per_task=3"),
    (["buffer=0"], "baseline=finetune"),
    (["baseline=finetune", "labels=ddn"], "labels=hard"),
    (["dataset=seq_cifar10", "dataset.root=/nonexistent/cifar"], "dataset.root='/nonexistent/cifar'"),
    (["trainer=gpu"], "trainer=cpu"),
    (["ddn.boundary_iters=-1"], "ddn.boundary_iters=-1"),
    (["labels=ddn", "ddn.per_step=false"], "ddn.boundary_iters>0"),
    (["buffer=5", "ddn.val_balanced=true"], "buffer>=10"),
    (["dataset.imbalance_ratio=0.5"], "dataset.imbalance_ratio=0.5"),
    (["head=mlp"], "head='mlp'"),
    (["ddn.label_mix=0"], "ddn.label_mix=0"),
    (["ddn.center_hypergrad=maybe"], "ddn.center_hypergrad='maybe'"),
    (["ddn.input_norm=1"], "ddn.input_norm=1"),
    (["ddn.hypergrad=exact"], "choose autograd or analytic"),
    (["ddn.hypergrad=analytic", "ddn.unroll_steps=3"], "ddn.unroll_steps=1"),
    (["ddn.hypergrad=analytic", "ddn.unroll_scope=full"], "ddn.unroll_scope=head"),
]


@pytest.mark.parametrize("overrides,expected", CASES)
def test_validator_names_key_and_fix(cfg_factory, overrides, expected):
    cfg = cfg_factory(*overrides)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    assert expected in msg and "\n" not in msg


# Every ConfigError takes one path through the CLI (hydra.main -> validate_config -> discard the run folder ->
# one line on stderr), so the CLI is checked on one case per kind of key (a group choice that conflicts with
# a value, a data path, a device, two keys together; a plain value: test_cli_refuses_before_writing_anything);
# the validator test above covers every case's message. A subprocess per case cost 13 s under load.
CLI_CASES = [case for case in CASES if case[1] in
             ("labels=hard", "dataset.root='/nonexistent/cifar'", "trainer=cpu", "ddn.boundary_iters>0")]


def test_cli_cases_are_cases():
    assert len(CLI_CASES) == 4


@pytest.mark.parametrize("overrides,expected", CLI_CASES)
def test_cli_refuses_without_leaving_a_run_folder(tmp_path, overrides, expected):
    run_dir = tmp_path / "run"
    proc = run_cli([*overrides, f"hydra.run.dir={run_dir}"], cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    assert expected in proc.stderr and "is invalid" in proc.stderr
    assert not run_dir.exists()


def test_default_config_is_valid(cfg_factory):
    validate_config(cfg_factory())


def test_cli_refuses_before_writing_anything(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["buffer=-1", f"hydra.run.dir={run_dir}"], cwd=ROOT, timeout=120)
    assert proc.returncode != 0
    assert "buffer=-1 is invalid" in proc.stderr
    assert not run_dir.exists(), "a refused run must not leave a run folder behind"


def test_cli_missing_data_is_one_clear_line(tmp_path):
    empty = tmp_path / "cifar"
    empty.mkdir()
    run_dir = tmp_path / "run"
    proc = run_cli(["dataset=seq_cifar10", f"dataset.root={empty}", f"hydra.run.dir={run_dir}"], cwd=ROOT,
                   timeout=120)
    assert proc.returncode != 0
    assert "no CIFAR10 data under dataset.root" in proc.stderr
    assert not run_dir.exists()
    assert not list(Path(tmp_path).rglob("results.json"))
