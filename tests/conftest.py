"""Shared helpers: compose the real Hydra config (conf/train.yaml) and shrink it for fast tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import src.config_resolvers  # noqa: F401  (registers ${tuned:...})

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Small and fast: 2 tasks of the embedded dataset, no progress bars.
FAST = ["dataset.classes_per_task=5", "trainer.enable_progress_bar=false", "log_every_n_steps=5"]


def compose_cfg(out_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"output_dir={out_dir}", *FAST, *overrides])


@pytest.fixture
def cfg_factory(tmp_path):
    def make(*overrides: str, out: str = "run") -> DictConfig:
        return compose_cfg(tmp_path / out, list(overrides))

    return make


def run_cli(args: list[str], cwd: Path, timeout: int = 300):
    import subprocess

    return subprocess.run([sys.executable, "-m", "src.train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
