"""The report on synthetic results files with known values: exact means, stds and paired gains."""
import json

import pytest

from src.report import report


def write(folder, name, baseline, labels, seed, class_il, buffer=200, status="completed"):
    d = folder / name
    d.mkdir(parents=True)
    cfg = {"baseline": {"name": baseline}, "dataset": {"name": "seq_digits"}, "setting": {"name": "online"},
           "buffer": buffer, "labels": labels, "alpha": 1.0, "beta": 0.9, "seed": seed}
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


def test_buffer_figure_and_empty_folder(tmp_path):
    for i, buf in enumerate((50, 200)):
        write(tmp_path, f"r{i}", "er", "hard", 0, 30.0 + i, buffer=buf)
    md = report(tmp_path)
    assert (tmp_path / "accuracy_vs_buffer.png").exists() and "accuracy_vs_buffer.png" in md
    with pytest.raises(SystemExit, match="no results.json"):
        report(tmp_path / "nothing_here")
