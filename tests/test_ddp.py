"""Two CPU processes (gloo) run the full loop with DDN on; compared with one process at the same global batch."""
import json

import pytest

from tests.conftest import ROOT, run_cli

COMMON = ["dataset.classes_per_task=5", "setting.epochs=5", "labels=ddn", "trainer.enable_progress_bar=false",
          "seed=0"]
TOLERANCE = 5.0  # points of final class-IL accuracy (measured gap: 0.2-0.9 on seeds 0 and 1)


def test_two_process_ddp_matches_single_process(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp = run_cli([*COMMON, "trainer=ddp", "trainer.accelerator=cpu", f"hydra.run.dir={ddp_dir}"], cwd=ROOT)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = run_cli([*COMMON, "logger=none", "setting.batch_size=20", "setting.buffer_batch_size=20",
                      f"hydra.run.dir={single_dir}"], cwd=ROOT)
    assert single.returncode == 0, single.stderr[-2000:]
    a = json.loads((ddp_dir / "results.json").read_text())
    b = json.loads((single_dir / "results.json").read_text())
    rep = a["replicas"]
    assert rep["world_size"] == 2 and rep["identical"], rep  # classifier, DDN and its EMA equal on both ranks
    assert rep["per_rank"][0]["labels"] is not None
    assert a["label_diagnostics"]["outer_steps"] > 0
    assert abs(a["final"]["class_il"] - b["final"]["class_il"]) < TOLERANCE
    # written once: one table on stdout, one TensorBoard run
    assert ddp.stdout.count("results:") == 1
    assert len(list((ddp_dir / "tb").glob("events.out.tfevents*"))) >= 1
    assert not list(ddp_dir.glob("tb*/version_*"))
