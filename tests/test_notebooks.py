"""The notebooks execute top to bottom (nbclient, a real kernel) on a tiny sweep, so they never rot."""
import nbformat
import pytest
from nbclient import NotebookClient

from src.train import train
from tests.conftest import ROOT

pytest.importorskip("ipykernel")


def _execute(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: commit it without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return nb


def test_results_notebook_on_a_tiny_sweep(cfg_factory, tmp_path, monkeypatch):
    for labels in ("hard", "ddn"):
        for seed in (0, 1):
            train(cfg_factory("logger=none", f"labels={labels}", f"seed={seed}", out=f"sweep/{labels}_{seed}"))
    monkeypatch.setenv("DDN_SWEEP", str(tmp_path / "sweep"))
    nb = _execute("results.ipynb")
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/markdown", ""))
                   for c in nb.cells for o in c.get("outputs", []))
    assert "| labels | class_il" in text and "Paired gain" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_method_notebook_runs_and_shows_soft_labels(monkeypatch):
    monkeypatch.setenv("DDN_OVERRIDES", "dataset.classes_per_task=5 log_every_n_steps=5")
    nb = _execute("method.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "p(hard)" in text
    assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])) == 2
