"""The report on synthetic results files with known values: exact means, stds and paired gains."""
import json

import pytest

from src.report import report


def write(folder, name, baseline, labels, seed, class_il, buffer=200, status="completed", ddn=None):
    d = folder / name
    d.mkdir(parents=True)
    cfg = {"baseline": {"name": baseline, "method": {"seed": seed}}, "dataset": {"name": "seq_digits"},
           "setting": {"name": "online"}, "buffer": buffer, "labels": labels, "alpha": 1.0, "beta": 0.9, "seed": seed}
    if ddn is not None:
        cfg["ddn"] = ddn
    final = {"class_il": class_il, "task_il": class_il + 10, "forgetting": 5.0} if status == "completed" else {}
    (d / "results.json").write_text(json.dumps({"config": cfg, "final": final, "status": status,
                                                "wall_clock_s": 1.0}))


def test_means_stds_and_paired_gain_are_exact(tmp_path):
    write(tmp_path, "a0", "er", "hard", 0, 40.0)
    write(tmp_path, "a1", "er", "hard", 1, 50.0)
    write(tmp_path, "a2", "er", "hard", 2, 60.0)
    write(tmp_path, "b0", "er", "ddn", 0, 42.0)
    write(tmp_path, "b1", "er", "ddn", 1, 54.0)
    write(tmp_path, "b2", "er", "ddn", 2, 63.0)
    write(tmp_path, "c0", "er", "ddn", 3, 0.0, status="diverged")
    md = report(tmp_path)
    assert "| hard | 50.00 ± 10.00 | 60.00 ± 10.00 | 5.00 ± 0.00 | [0, 1, 2] |" in md
    assert "| ddn | 53.00 ± 10.54 |" in md  # std of 42, 54, 63 (ddof=1) = 10.536
    # paired differences 2, 4, 3: mean 3, std 1, t(0.975, 2) = 4.303 -> half-width 4.303 / sqrt(3) = 2.48
    assert "| ddn | +3.00 ± 2.48 | 3 |" in md
    assert "diverged" in md
    csv = (tmp_path / "report.csv").read_text().splitlines()
    assert csv[0].startswith("labels,class_il_mean,class_il_std,class_il_n")
    assert any(line.startswith("hard,50.0,10.0,3") for line in csv)


def test_an_option_outside_the_design_keys_splits_runs_instead_of_averaging_them(tmp_path):
    """ddn.label_mix is not in DESIGN_KEYS: its runs must get their own row and must not be paired with (and
    overwrite) the default runs of the same seed; runs written before the option existed count as its default."""
    write(tmp_path, "h0", "er", "hard", 0, 50.0)
    write(tmp_path, "h1", "er", "hard", 1, 60.0)
    write(tmp_path, "d0", "er", "ddn", 0, 52.0)  # an older run: no ddn.label_mix in its config
    write(tmp_path, "d1", "er", "ddn", 1, 63.0, ddn={"label_mix": 1.0})
    write(tmp_path, "m0", "er", "ddn", 0, 40.0, ddn={"label_mix": 0.3})
    write(tmp_path, "m1", "er", "ddn", 1, 50.0, ddn={"label_mix": 0.3})
    md = report(tmp_path)
    assert "| labels | ddn.label_mix | class_il |" in md  # and no column for the seed copy baseline.method.seed
    assert "| ddn | 0.3 | 45.00 ± 7.07 |" in md and "| ddn | 1.0 | 57.50 ± 7.78 |" in md
    # differences 2 and 3: mean 2.5, std 0.707, t(0.975, 1) = 12.706 -> half-width 6.35
    assert "| 1.0 | ddn | +2.50 ± 6.35 | 2 |" in md
    assert "| 0.3 | ddn |" not in md  # no hard arm with label_mix 0.3 to pair with


def test_buffer_figure_and_empty_folder(tmp_path):
    for i, buf in enumerate((50, 200)):
        write(tmp_path, f"r{i}", "er", "hard", 0, 30.0 + i, buffer=buf)
    md = report(tmp_path)
    assert (tmp_path / "accuracy_vs_buffer.png").exists() and "accuracy_vs_buffer.png" in md
    with pytest.raises(SystemExit, match="no results.json"):
        report(tmp_path / "nothing_here")


def test_paper_table_methods_by_buffer_with_paired_gain(tmp_path):
    vals = {("er", "hard", 200): (40.0, 44.0), ("er", "ddn", 200): (41.0, 47.0),
            ("er", "hard", 500): (50.0, 52.0), ("er", "ddn", 500): (49.0, 53.0),
            ("derpp", "hard", 200): (60.0, 62.0)}
    for (m, lab, buf), per_seed in vals.items():
        for seed, v in enumerate(per_seed):
            write(tmp_path, f"{m}_{lab}_{buf}_{seed}", m, lab, seed, v, buffer=buf)
    md = report(tmp_path)
    assert "| method | 200 | 500 |" in md
    assert "| er | 42.00 ± 2.83 | 51.00 ± 1.41 |" in md
    assert "| er + ddn | 44.00 ± 4.24 | 51.00 ± 2.83 |" in md
    # paired differences (1, 3) and (-1, 1): means 2 and 0, std 1.414, t(0.975, 1) = 12.706 -> 12.71
    assert "|   gain of ddn (paired) | +2.00 ± 12.71 (n=2) | +0.00 ± 12.71 (n=2) |" in md
    assert "| derpp | 61.00 ± 1.41 | – |" in md
    csv = (tmp_path / "report_paper.csv").read_text().splitlines()
    assert csv[0] == "method,200_mean,200_std,200_n,500_mean,500_std,500_n"
    assert "er,42.0,2.8284271247461903,2,51.0,1.4142135623730951,2" in csv


def test_accuracy_matrix_figure_of_the_best_run(tmp_path):
    from tests.conftest import compose_cfg
    from src.train import train

    train(compose_cfg(tmp_path / "run", ["logger=none"]))
    md = report(tmp_path / "run")
    assert (tmp_path / "run" / "accuracy_matrix.png").exists() and "accuracy_matrix.png" in md
