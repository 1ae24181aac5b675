"""The benchmark scripts must not rot: bench/cost.py's measurement on the embedded dataset, a few steps; every run of
bench/run.py's suites and of `make bench` composes and validates."""
from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cost_variants_pair_every_method_with_its_ddn_arm():
    cost = load("cost")
    for m in cost.METHODS:
        assert m in cost.VARIANTS and f"{m}+ddn (head)" in cost.VARIANTS
        assert cost.base_of(f"{m}+ddn (head)") == m
    assert "er+ddn (full)" in cost.VARIANTS


def test_gpu_script_parses_and_names_real_variants():
    """bench/gpu.sh runs only on a GPU machine: its syntax and the cost variants it names are checked here."""
    import subprocess

    script = ROOT / "bench" / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    named = re.findall(r'"(\w+\+ddn \([^)]*\))"', script.read_text())
    assert named and set(named) <= set(load("cost").VARIANTS)


def test_gpu_script_runs_the_cost_cells_it_is_given(tmp_path):
    """CELLS and FULL=0 pick phase 3's cells (a short GPU lease); the default is all five, full scope in fp32.
    PY=echo stands in for Python, so each bench/cost.py command line is logged instead of run."""
    import os
    import subprocess

    def cost_lines(**env: str) -> list[str]:
        out = tmp_path / "_".join(env) if env else tmp_path / "default"
        subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), str(out)], cwd=tmp_path, check=True,
                       capture_output=True, env={**os.environ, "PY": "echo", "ONLY_COST": "1", **env})
        return [line for line in (out / "log.txt").read_text().splitlines() if line.startswith("bench/cost.py")]

    default = cost_lines()
    assert len(default) == 5 and sum("er+ddn (full)" in line for line in default) == 2
    chosen = cost_lines(CELLS="online 32-true,online 32-true ddn.hypergrad=analytic", FULL="0")
    assert len(chosen) == 2 and not any("(full)" in line for line in chosen)
    assert all("--count-ops" in line and "setting=online trainer.precision=32-true" in line for line in chosen)
    assert chosen[1].endswith("ddn.hypergrad=analytic")


def test_cost_measures_inner_and_outer_step_of_derpp_with_ddn():
    cost = load("cost")
    r = cost.measure(["dataset=seq_digits", *cost.VARIANTS["derpp+ddn (head)"]], steps=4, threads=1)
    assert r["outer_per_step"] > 0 and r["inner_per_step"] > 0
    assert abs(r["s_per_step"] - r["inner_per_step"] - r["outer_per_step"]) < 1e-9
    assert 0 <= r["data_share"] < 1 and r["rss_peak_mib"] > 0


def test_op_count_counts_only_top_level_ops():
    import torch

    cost = load("cost")
    x, w = torch.randn(3, 4), torch.randn(2, 4)
    # linear dispatches t + addmm/matmul inside itself: one top-level op, as the add and the mul
    assert cost.profile_ops(lambda: torch.nn.functional.linear(x + 1, w).mul(2))["ops"] == 3
    r = cost.measure(["dataset=seq_digits", *cost.VARIANTS["er+ddn (head)"]], steps=3, threads=1, count_ops=True)
    base = cost.measure(["dataset=seq_digits", *cost.VARIANTS["er"]], steps=3, threads=1, count_ops=True)
    assert r["ops_per_step"] > base["ops_per_step"] > 0


def test_op_map_splits_exactly_the_ops_cost_counts():
    """bench/op_map.py: the phases add up to cost.py's op count, the outer step's phases appear only with DDN."""
    cost, op_map = load("cost"), load("op_map")
    ddn = ["dataset=seq_digits", *cost.VARIANTS["er+ddn (head)"]]
    phases = op_map.op_map(ddn, steps=3, threads=1)
    counted = cost.measure(ddn, 3, 1, count_ops=True)["ops_per_step"] * 3
    assert sum(sum(c.values()) for c in phases.values()) == counted
    assert phases["step › outer step › virtual step"]["mm"] > 0 and "step › outer step › optimizer Adam" in phases
    er = op_map.op_map(["dataset=seq_digits", *cost.VARIANTS["er"]], steps=3, threads=1)
    assert "step › buffer insert" in er and not any("outer step" in p or "soft targets" in p for p in er)


def test_alignment_table_exact_values(tmp_path):
    """bench/alignment.py: seed means, the paired soft − hard interval and per-task means, from results.json."""
    import json

    alignment = load("alignment")

    def write(tag: str, seed: int, class_il: float, ga: dict, flips: float | None = None) -> None:
        d = tmp_path / tag / f"seed{seed}"
        d.mkdir(parents=True)
        diag = None if flips is None else {"argmax_flip_share": flips}
        d.joinpath("results.json").write_text(json.dumps({"status": "completed", "final": {"class_il": class_il},
                                                          "gradient_alignment": ga, "label_diagnostics": diag}))

    def ga(hard: float, soft: float, share: float, per_task: list[float]) -> dict:
        return {"n": 4, "align_hard": hard, "align_soft": soft, "soft_minus_hard": soft - hard,
                "soft_above_hard_share": share, "descent_hard": 2 * hard, "descent_soft": 2 * soft,
                "by_task": [{"task": t, "soft_minus_hard": d} for t, d in enumerate(per_task)]}

    write("er_ddn", 0, 70.0, ga(0.6, 0.2, 0.25, [-0.2, -0.6]), flips=0.1)
    write("er_ddn", 1, 74.0, ga(0.6, 0.4, 0.75, [0.0, -0.4]), flips=0.3)
    write("er_hard", 0, 60.0, {"n": 4, "align_hard": 0.5, "descent_hard": 1.0, "by_task": []})
    (tmp_path / "er_hard" / "seed1").mkdir()  # an unfinished seed without results is skipped
    ddn, hard = alignment.rows(tmp_path)
    assert ddn["tag"] == "er_ddn" and ddn["n"] == 2 and ddn["class_il"] == pytest.approx(72.0)
    assert ddn["align_soft"] == pytest.approx(0.3) and ddn["diff"] == pytest.approx(-0.5)  # tasks 2+: -0.6, -0.4
    assert ddn["half"] == pytest.approx(12.706 * 0.1, rel=1e-3)  # t(0.975, 1 dof) · sd (0.141) / sqrt(2)
    assert ddn["by_task"] == pytest.approx([-0.1, -0.5]) and ddn["above"] == pytest.approx(0.5)
    assert ddn["flipped"] == pytest.approx(0.2) and ddn["descent_soft"] == pytest.approx(0.6)
    assert hard == {"tag": "er_hard", "n": 1, "class_il": 60.0, "align_hard": 0.5, "descent_hard": 1.0}
    md = alignment.markdown([ddn, hard])
    assert "| er_ddn | 2 | 72.00 | 0.600 | 0.300 | -0.5000 ± " in md and "| er_hard | 1 | 60.00 | 0.500 | – |" in md
    assert alignment.rows(tmp_path, "_buffer") == []  # these runs did not measure the whole buffer
    write("er_ddn_b", 0, 70.0, {**{f"{k}_buffer": v for k, v in ga(0.5, 0.1, 0.0, []).items() if k != "by_task"},
                                "by_task": [{"task": 0, "soft_minus_hard_buffer": -0.4}]}, flips=0.0)
    (whole,) = alignment.rows(tmp_path, "_buffer")
    # a run with only the first task falls back to its run mean
    assert whole["tag"] == "er_ddn_b" and whole["diff"] == pytest.approx(-0.4) and whole["by_task"] == [-0.4]


def test_run_refuses_an_only_tag_the_suite_does_not_have(monkeypatch, capsys):
    """A mistyped --only tag used to run nothing and say nothing; it must name the suite's real tags."""
    run = load("run")
    monkeypatch.setattr("sys.argv", ["run.py", "mnist_offline", "--only", "der_hard", "--seeds", "0"])
    with pytest.raises(SystemExit) as exit_:
        run.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--only der_hard: not a run of suite mnist_offline" in err
    assert "der_hard_setting-offline_epochs-5" in err  # the fix: the tag it should have been


@functools.cache
def check_options(overrides: tuple[str, ...]) -> None:
    """Compose a run's config and validate it, without the data-folder check (a fresh clone has no data/;
    make bench extracts it first). Cached: the suites and the recipe repeat runs."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from src.config_check import validate_config

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.dataset.root = None
    validate_config(cfg)


def test_run_refuses_a_finished_run_of_another_config(tmp_path, capsys):
    """A finished run is skipped only when it is the requested run: the same tag with another `--extra` used to
    be skipped as done, leaving the old run's figure in place of the new one's."""
    import json

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    run = load("run")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*run.COMMON, "seed=0", f"output_dir={tmp_path}", "labels=ddn"])
        other = compose("train", overrides=[*run.COMMON, "seed=0", f"output_dir={tmp_path}", "labels=ddn",
                                            "ddn.hypergrad=analytic"])
    saved = OmegaConf.to_container(cfg, resolve=True)
    (tmp_path / "results.json").write_text(json.dumps({"config": saved}))
    run.refuse_other_finished_run(tmp_path, cfg)  # the same run: skipped as done
    with pytest.raises(SystemExit) as exit_:
        run.refuse_other_finished_run(tmp_path, other)
    assert str(exit_.value) == (f"bench/run.py: {tmp_path} holds a finished run of another config (ddn.hypergrad): "
                                "pass --out NAME to write this one elsewhere, or delete that folder to rerun it")
    del saved["ddn"]["hypergrad"]  # recorded before the option existed: it could not record it
    (tmp_path / "results.json").write_text(json.dumps({"config": saved}))
    run.refuse_other_finished_run(tmp_path, other)


def test_every_benchmark_run_composes_and_passes_validation():
    """A suite names its runs by overrides; a renamed or mistyped key must fail here, not hours into `make bench`."""
    run = load("run")
    for suite, runs in run.SUITES.items():
        tags = [run.tag_of(o) for o in runs()]
        assert len(tags) == len(set(tags)), f"{suite}: two runs share a folder name"
        for overrides in runs():
            check_options((*run.COMMON, "buffer=200", "seed=0", *overrides))


@functools.cache
def bench_recipe() -> str:
    """The commands `make bench` runs (`make -n bench`)."""
    import subprocess

    return subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


@functools.cache
def recipe_run_calls() -> tuple[str, ...]:
    """The arguments of every `bench/run.py` call of `make bench`, its buffer loops unrolled."""
    calls = []
    for line in bench_recipe().replace("\\\n", " ").splitlines():
        if "bench/run.py" in line:
            loop = re.match(r"\s*for b in ([^;]+);", line)
            for b in loop.group(1).split() if loop else [""]:
                calls.append(" " + " ".join(line.split("bench/run.py", 1)[1].split(";")[0].replace("$b", b).split()))
    assert len(calls) > 20
    return tuple(calls)


def runs_of_call(run, call: str) -> dict[tuple, tuple]:
    """{(output folder, tag, seed): (seed, buffer, overrides)} of each run a `bench/run.py` call makes."""
    import shlex

    args = run.parse_args(shlex.split(call))
    by_tag = {run.tag_of(o): o for o in run.SUITES[args.suite]()}
    return {(args.out or args.suite, tag, seed): (seed, args.buffer, tuple(sorted([*by_tag[tag], *args.extra])))
            for tag in args.only or by_tag for seed in range(args.first_seed, args.first_seed + args.seeds)}


def test_make_bench_names_only_real_suites_tags_and_options():
    """`make bench` runs for hours; a suite, `--only` tag or `--extra` option its recipe mistypes must fail here,
    not when the run is reached."""
    import shlex

    run = load("run")
    recipe = bench_recipe()
    written = set()  # (output folder, tag) of every run the recipe makes
    for call in recipe_run_calls():
        try:  # bench/run.py's own parser: refuses an unknown suite or --only tag
            args = run.parse_args(shlex.split(call))
        except SystemExit:
            pytest.fail(f"make bench: bench/run.py refuses `{call.strip()}` (its reason: captured stderr below)")
        runs = {run.tag_of(o): o for o in run.SUITES[args.suite]()}
        for tag in args.only or runs:
            check_options((*run.COMMON, f"buffer={args.buffer}", "seed=0", *runs[tag], *args.extra))
            written.add((args.out or args.suite, tag))
    # bench/paired.py SUITE BASE: the base arm must be one the recipe runs (BASE: a tag of SUITE or OTHER/TAG)
    for line in recipe.splitlines():
        if "bench/paired.py" in line:
            suite, base = shlex.split(line.split("bench/paired.py", 1)[1])[:2]
            folder, tag = base.split("/") if "/" in base else (suite, base)
            assert (folder, tag) in written, f"make bench: `{line.strip()}` pairs with a run the recipe never makes"
            assert any(out == suite for out, _ in written), f"make bench: `{line.strip()}`: no run writes {suite}"
    for line in recipe.replace("\\\n", " ").splitlines():
        if "bench/buffer_labels.py" in line:  # every folder it reads: bench/out/SUITE/TAG of a run the recipe makes
            for path in shlex.split(line.split("bench/buffer_labels.py", 1)[1]):
                if not path.startswith("-"):
                    folder, tag = Path(path).relative_to("bench/out").parts
                    assert (folder, tag) in written, f"make bench: `{line.strip()}` reads {path}, which no run writes"
    variants = load("cost").VARIANTS
    for line in recipe.replace("\\\n", " ").splitlines():  # bench/cost.py, bench/op_map.py: their variants exist
        if "bench/cost.py" in line or "bench/op_map.py" in line:
            named, flag = [], None
            for arg in shlex.split(line.split(".py", 1)[1]):
                flag = arg if arg.startswith("--") else flag
                if flag in ("--variant", "--variants") and arg != flag:
                    named.append(arg)
            assert set(named) <= set(variants), f"make bench: `{line.strip()}` names an unknown variant"


def test_make_bench_gives_each_run_folder_one_config():
    """bench/run.py refuses a finished run of another config in the folder it would write; a recipe that sent two
    configs to one folder (the same tag and seed with another `--extra` or `--buffer`) would stop hours in."""
    run = load("run")
    folders: dict[tuple, tuple] = {}
    for call in recipe_run_calls():
        for (out, tag, seed), config in runs_of_call(run, call).items():
            assert folders.setdefault((out, tag, seed), config) == config, (
                f"make bench: `bench/run.py{call}` writes bench/out/{out}/{tag}/seed{seed}, another run's folder")
    assert len(folders) > 1000


def test_make_bench_trains_at_one_thread_as_recorded():
    """Every figure in BENCHMARKS.md ran at one torch thread; at two, the same DDN run can end 36 points apart
    (section 7). So every training command of `make bench` must run at one thread, whatever the machine's cores."""
    import shlex

    run = load("run")
    for call in recipe_run_calls():  # its default, or an explicit --threads
        assert run.parse_args(shlex.split(call)).threads == 1, f"make bench: `bench/run.py{call}` is not at 1 thread"
    trainings = [line for line in bench_recipe().replace("\\\n", " ").splitlines()
                 if re.search(r"bench/cost\.py|src\.train", line)]
    assert len(trainings) >= 3
    for line in trainings:
        if "bench/cost.py" in line:
            assert "--threads 1" in line, f"make bench: `{line.strip()}` is not at 1 thread"
        else:  # src.train has no thread option: torch reads the variable at start-up
            assert line.lstrip().startswith("OMP_NUM_THREADS=1 "), f"make bench: `{line.strip()}` is not at 1 thread"


def test_every_run_benchmarks_quotes_is_a_run_make_bench_makes():
    """Issue #7 asks that `make bench` reproduce every figure: each `bench/run.py` command BENCHMARKS.md gives must
    make only runs (seed, buffer, overrides; any output folder) that the recipe makes too. The GPU's runs
    (`trainer=gpu`) are bench/gpu.sh's; commands written with a placeholder (B, K, ARM, …) are not checked."""
    run = load("run")
    made = set().union(*(runs_of_call(run, call).values() for call in recipe_run_calls()))
    text = (ROOT / "BENCHMARKS.md").read_text().replace("\n", " ")
    quoted = re.findall(r"`(?:python )?bench/run\.py ([^`]+)`", text)
    checked = 0
    for call in quoted:
        if re.search(r"[A-Z]( |$)|…|\$\(|\||trainer=gpu", call):  # B, K, ARM, mnist_bufferB, $(…), 8|9
            continue
        if call.startswith("-"):  # names an option (`bench/run.py --threads`), not a command
            continue
        missing = set(runs_of_call(run, call).values()) - made
        assert not missing, f"BENCHMARKS.md quotes `bench/run.py {call}`; make bench never runs {sorted(missing)[0]}"
        checked += 1
    assert checked > 50


def test_paired_gains_against_a_base_of_another_suite(tmp_path):
    """bench/paired.py: seed pairing (only shared, completed seeds), exact gains, interval, sd, positive count,
    diagonal and training-time ratio, a cross-suite base."""
    import json

    paired = load("paired")

    def write(suite: str, tag: str, seed: int, class_il: float, status: str = "completed",
              diag: tuple[float, float] | None = None, train_s: float | None = None) -> None:
        d = tmp_path / suite / tag / f"seed{seed}"
        d.mkdir(parents=True)
        r = {"status": status, "final": {"class_il": class_il}, "train_s": train_s}
        if diag:  # a two-task class-IL matrix: diag on the diagonal, None above it
            r["accuracy_matrices"] = {"net": {"class_il": [[diag[0], None], [10.0, diag[1]]]}}
        d.joinpath("results.json").write_text(json.dumps(r))

    for seed, v in enumerate([40.0, 42.0, 44.0]):
        write("base_suite", "er_hard", seed, v, diag=(80.0, 90.0), train_s=100.0)
    write("variant", "er_ddn", 0, 41.0, diag=(70.0, 80.0), train_s=120.0)
    write("variant", "er_ddn", 2, 43.0, diag=(60.0, 70.0), train_s=130.0)
    write("variant", "er_ddn", 10, 50.0)  # no base run of seed 10: not paired
    write("variant", "er_frozen", 1, 30.0, status="failed")  # unfinished: no row
    write("variant", "er_old", 0, 45.0)  # an older run without matrix or timing: those cells say so
    table = paired.rows(tmp_path / "variant", tmp_path / "base_suite" / "er_hard")
    assert [r["tag"] for r in table] == ["er_ddn", "er_old"]
    r = table[0]
    assert r["n"] == 2 and r["mean"] == pytest.approx(42.0) and r["gains"] == pytest.approx([1.0, -1.0])
    assert r["gain"] == pytest.approx(0.0) and r["sd"] == pytest.approx(2 ** 0.5) and r["positive"] == 1
    assert r["half"] == pytest.approx(12.706 * 1.0, rel=1e-3)  # sd √2 / √2
    assert r["diagonal"] == pytest.approx(70.0) and r["base_diagonal"] == pytest.approx(85.0)
    assert r["time_ratios"] == pytest.approx([1.2, 1.3])
    md = paired.markdown(table, "base_suite/er_hard", "class_il")
    row = "| er_ddn | 42.00 | +0.00 ± 12.71 | 1.41 | 1/2 | +1.00, -1.00 | 2 | 70.0 / 85.0 | 1.25 (1.20–1.30) |"
    assert row in md
    assert "| er_old | 45.00 | +5.00 (one seed) | – | 1/1 | +5.00 | 1 | – | – |" in md
    # a base inside the suite is not paired with itself
    assert [r["tag"] for r in paired.rows(tmp_path / "base_suite", tmp_path / "base_suite" / "er_hard")] == []


def test_paired_gains_of_a_named_model(tmp_path):
    """bench/paired.py SUITE BASE METRIC MODEL: CLS-ER's other models pair on their own final figure; the diagonal
    defaults to the reported model's matrix."""
    import json

    paired = load("paired")
    for tag, plastic_last, stable_diag in (("clser_hard", [30.0, 50.0], 70.0), ("clser_ddn", [36.0, 50.0], 60.0)):
        d = tmp_path / "s" / tag / "seed0"
        d.mkdir(parents=True)
        d.joinpath("results.json").write_text(json.dumps({
            "status": "completed", "reported_model": "stable",
            "final": {"class_il": 45.0, "plastic_class_il": sum(plastic_last) / 2},
            "accuracy_matrices": {"stable": {"class_il": [[stable_diag, None], [10.0, stable_diag]]},
                                  "plastic": {"class_il": [[90.0, None], plastic_last]}}}))
    stable, = paired.rows(tmp_path / "s", tmp_path / "s" / "clser_hard")
    assert stable["gains"] == [0.0] and (stable["diagonal"], stable["base_diagonal"]) == (60.0, 70.0)
    plastic, = paired.rows(tmp_path / "s", tmp_path / "s" / "clser_hard", "class_il", "plastic")
    assert plastic["mean"] == 43.0 and plastic["gains"] == [3.0] and plastic["diagonal"] == 70.0


def test_paired_prints_one_table_per_metric_and_names_a_missing_one(tmp_path, capsys):
    """bench/paired.py SUITE BASE class_il,task_il: a table per metric in the given order; a metric (or model)
    the runs lack stops before any table, naming the figures they have."""
    import json

    paired = load("paired")
    for tag, v in (("er_hard", 40.0), ("er_ddn", 43.0)):
        d = tmp_path / "s" / tag / "seed0"
        d.mkdir(parents=True)
        d.joinpath("results.json").write_text(json.dumps({"status": "completed",
                                                          "final": {"class_il": v, "task_il": v + 40}}))
    paired.main(["s", "er_hard", "task_il,class_il"], out=tmp_path)
    tables = capsys.readouterr().out.split("\n\n")
    assert [t.splitlines()[0].split(" | ")[1] for t in tables] == ["task_il (mean)", "class_il (mean)"]
    assert "| er_ddn | 83.00 | +3.00 (one seed) |" in tables[0] and "| er_ddn | 43.00 |" in tables[1]
    for argv, missing in ((["s", "er_hard", "class_il,taskil"], "'taskil'"),
                          (["s", "er_hard", "class_il", "plastic"], "'plastic_class_il'")):
        with pytest.raises(SystemExit, match=f"has no final {missing} .*; it has class_il, task_il"):
            paired.main(argv, out=tmp_path)
        assert capsys.readouterr().out == ""


def test_paired_against_the_recorded_figures_of_a_base(tmp_path, capsys):
    """bench/paired.py --recorded CPU: the base's per-seed class-IL comes from bench/recorded.csv's rows of that CPU
    (a variant paired without rerunning its base); a base or metric it does not record stops with the fix."""
    import json

    paired = load("paired")
    base = "cifar_online_aug_lr001/er_hard_augment-true"  # recorded on the AMD: 44.34, 41.88 at seeds 0, 1
    assert paired.recorded_base(base, "amd", load("check_recorded").recorded())["seed1"]["final"] == {"class_il": 41.88}
    for seed, v in ((0, 45.34), (1, 40.88)):
        d = tmp_path / "variant" / "er_ddn" / f"seed{seed}"
        d.mkdir(parents=True)
        d.joinpath("results.json").write_text(json.dumps({"status": "completed", "final": {"class_il": v}}))
    paired.main(["variant", base, "--recorded", "AMD"], out=tmp_path)
    table = capsys.readouterr().out
    assert f"paired gain vs {base} (recorded, AMD)" in table
    assert "| er_ddn | 43.11 | +0.00 ± 12.71 | 1.41 | 1/2 | +1.00, -1.00 | 2 | – | – |" in table
    with pytest.raises(SystemExit, match="no run of cifar_online_aug_lr001/er_ddn_frozen_augment-true on Intel"):
        paired.main(["variant", "cifar_online_aug_lr001/er_ddn_frozen_augment-true", "--recorded", "Intel"],
                    out=tmp_path)
    with pytest.raises(SystemExit, match=r"no final 'task_il' .*it has class_il \(a recorded base: class-IL only\)"):
        paired.main(["variant", base, "task_il", "--recorded", "AMD"], out=tmp_path)


def test_buffer_label_flows_exact_values():
    """bench/buffer_labels.py's summary on hand-made labels: flip share, true-class mass, where flips point."""
    import torch

    y = torch.tensor([0, 1, 2, 3, 4, 5])  # 2 classes per task: tasks 0, 0, 1, 1, 2, 2; task 2 is the current one
    target = torch.tensor([0, 0, 5, 3, 0, 0])  # 1 -> its own task, 2 -> a later task, 4 and 5 -> an earlier one
    probs = torch.nn.functional.one_hot(target, 6).float() * 0.7 + 0.05
    s = load("buffer_labels").summarise(y, y // 2, probs, current_task=2, classes_per_task=2, n_tasks=3)
    assert s["n"] == 6 and s["flipped"] == pytest.approx(4 / 6)
    assert s["true_mass"] == pytest.approx((2 * 0.75 + 4 * 0.05) / 6)
    assert (s["to_same_task"], s["to_earlier_task"], s["to_later_task"]) == (0.25, 0.5, 0.25)
    assert s["from_current_task"] == 0.5 and s["into_one_class"] == 0.75  # class 0 takes 3 of the 4 flips
    assert s["task_matrix"] == [[2, 0, 0], [0, 1, 1], [2, 0, 0]]
    assert s["top_flips"] == [(1, 0, 1, 1), (2, 5, 1, 1), (4, 0, 1, 1), (5, 0, 1, 1)]
    y = torch.tensor([0, 0, 0, 1])  # two of the buffer's three class-0 samples carry class 1
    s = load("buffer_labels").summarise(y, y // 2, torch.eye(2)[torch.tensor([1, 1, 0, 1])], current_task=0,
                                        classes_per_task=2, n_tasks=1)
    assert s["top_flips"] == [(0, 1, 2, 3)]
    y = torch.tensor([1, 1])  # label_mix=0.5 saturated on class 0: a 50/50 tie is not a flip, 0.4 / 0.6 is
    s = load("buffer_labels").summarise(y, y // 2, torch.tensor([[0.5, 0.5], [0.6, 0.4]]), current_task=0,
                                        classes_per_task=2, n_tasks=1)
    assert s["flipped"] == 0.5 and s["top_flips"] == [(1, 0, 1, 2)]


def test_buffer_labels_of_a_run_kept_after_every_task(cfg_factory):
    """checkpoint.keep_task_ends keeps task<t>.ckpt beside last.ckpt; the untrained DDN label of every buffer
    sample is softmax over the seen classes of 8 * one_hot: e^8 / (e^8 + seen - 1) on the true class."""
    import math

    from src.train import train

    bl = load("buffer_labels")
    cfg = cfg_factory("labels=ddn_frozen", "buffer=30", "logger=none", "checkpoint.keep_task_ends=true")
    train(cfg)
    folder = Path(cfg.output_dir) / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt", "task0.ckpt", "task1.ckpt"]
    rows = [bl.buffer_labels(p) for p in bl.checkpoints([str(cfg.output_dir)], task_ends=True)]
    assert [r["task"] for r in rows] == [0, 1]
    for r, seen in zip(rows, (5, 10)):
        assert r["flipped"] == 0 and r["n"] == 30 and sum(map(sum, r["task_matrix"])) == 30
        assert r["true_mass"] == pytest.approx(math.exp(8) / (math.exp(8) + seen - 1), abs=1e-6)
    assert sum(rows[0]["task_matrix"][1]) == 0 and sum(rows[1]["task_matrix"][1]) > 0  # task 1 enters the buffer
    assert "after task 1" in bl.markdown(rows, by_task=True)
    (Path(cfg.output_dir) / "results.json").unlink()  # as if still running: its last.ckpt is not the final state
    with pytest.raises(SystemExit, match="no finished run folder"):
        bl.checkpoints([str(cfg.output_dir)])
    assert len(bl.checkpoints([str(cfg.output_dir)], task_ends=True)) == 2

    mixed = cfg_factory("labels=ddn_frozen", "buffer=30", "logger=none", "ddn.label_mix=0.5", out="mixed")
    train(mixed)
    last = Path(mixed.output_dir) / "checkpoints" / "last.ckpt"
    g = math.exp(8) / (math.exp(8) + 9)  # the network's own true-class mass with 10 seen classes
    assert bl.buffer_labels(last)["true_mass"] == pytest.approx(0.5 + 0.5 * g, abs=1e-6)
    assert bl.buffer_labels(last, network_part=True)["true_mass"] == pytest.approx(g, abs=1e-6)

    hard = cfg_factory("buffer=30", "logger=none", out="hard")
    train(hard)
    assert not list((Path(hard.output_dir) / "checkpoints").glob("task*.ckpt"))  # off by default
    assert bl.buffer_labels(Path(hard.output_dir) / "checkpoints" / "last.ckpt") is None  # no learned labels
    with pytest.raises(SystemExit, match="keep_task_ends=true"):
        bl.checkpoints([str(hard.output_dir)], task_ends=True)


def test_compare_runs_tells_identical_from_changed(tmp_path):
    """bench/compare_runs.py: timings, versions and output_dir may differ; any other field makes a pair differ."""
    import json

    cmp = load("compare_runs")

    def write(root, tag, seed, class_il, **extra):
        folder = root / tag / f"seed{seed}"
        folder.mkdir(parents=True)
        result = {"status": "completed", "final": {"class_il": class_il}, "config": {"output_dir": str(folder),
                  "seed": seed}, "train_s": 10.0 + seed, "versions": {"cpu": "Intel", "cpu_capability": "AVX512"},
                  "label_diagnostics": {"argmax_flip_share": 0.0}}
        result.update(extra)
        (folder / "results.json").write_text(json.dumps(result))

    old, new = tmp_path / "old", tmp_path / "new"
    for seed in (0, 1):
        write(old, "er_ddn", seed, 80.0 + seed)
    write(old, "er_hard", 0, 70.0)
    write(new, "er_ddn", 0, 80.0, train_s=99.0, versions={"cpu": "AMD", "cpu_id": "AuthenticAMD 25/17/1"})
    # ^ only what a rerun may change
    write(new, "er_ddn", 1, 81.0, label_diagnostics={"argmax_flip_share": 0.5})
    write(new, "er_ddn", 2, 82.0)
    lines, n_diff = cmp.compare(old, new)
    assert n_diff == 1
    assert "| er_ddn/seed0 | yes | 80.00 → 80.00 | – |" in lines
    assert "| er_ddn/seed1 | no | 81.00 → 81.00 | label_diagnostics |" in lines
    assert lines[-1] == ("1 of 2 matched runs identical; 1 only in OLD (er_hard/seed0); "
                         "1 only in NEW (er_ddn/seed2)")
    assert "(AMD (AuthenticAMD 25/17/1); Intel AVX512)" in lines[0]
    assert cmp.main([str(old / "er_ddn" / "seed0"), str(new / "er_ddn" / "seed0")]) == 0
    assert cmp.main([str(old), str(new)]) == 1
    write(new, "er_hard", 0, 70.5, config={"output_dir": "x", "seed": 1, "ddn": {"hypergrad": "analytic"}})
    lines, _ = cmp.compare(old, new)  # an option the old run predates is not a difference; a changed one is
    assert "| er_hard/seed0 | no | 70.00 → 70.50 (+0.50) | final, config.seed |" in lines
    changed = cmp.differing_fields({"config": {"ddn": {"lr": 1, "x": 0}}}, {"config": {"ddn": {"lr": 2}}})
    assert changed == ["config.ddn.lr"]


def test_compare_runs_in_the_mean_per_arm(tmp_path):
    """bench/compare_runs.py --mean: one row per arm over the seeds both sides completed, exact means, sds, paired
    shift and interval, identical and relabelled counts; a diverged run is left out and counted."""
    import json

    cmp = load("compare_runs")

    def write(root, tag, seed, class_il, flips=0.0, status="completed"):
        folder = root / tag / f"seed{seed}"
        folder.mkdir(parents=True)
        result = {"status": status, "final": {"class_il": class_il, "task_il": 90.0}, "config": {"seed": seed},
                  "versions": {"cpu": "Intel"}, "label_diagnostics": {"argmax_flip_share": flips}}
        (folder / "results.json").write_text(json.dumps(result))

    old, new = tmp_path / "old", tmp_path / "new"
    for seed, (a, b) in enumerate([(40.0, 41.0), (42.0, 44.0), (44.0, 45.0)]):
        write(old, "er_ddn", seed, a, flips=0.5 if seed == 0 else 0.1)
        write(new, "er_ddn", seed, b, flips=0.5 if seed < 2 else 0.1)
    write(old, "er_hard", 0, 70.0)
    write(new, "er_hard", 0, 70.0)  # identical
    write(old, "er_hard", 1, 71.0)
    write(new, "er_hard", 1, 30.0, status="diverged")  # left out, counted
    write(old, "erace_ddn", 0, 50.0)
    lines, matched = cmp.compare_mean(old, new)
    assert matched == 2
    # shifts +1, +2, +1: mean 4/3, sd 1/√3, half-width t(0.975, 2) · sd / √3 = 4.303 / 3
    assert "| er_ddn | 3 | 42.00 ± 2.00 | 43.33 ± 2.08 | +1.33 ± 1.43 | 0 of 3 | 1 → 2 |" in lines
    assert "| er_hard | 1 (1 not completed) | 70.00 | 70.00 | +0.00 (one seed) | 1 of 1 | 0 → 0 |" in lines
    assert lines[-1] == "2 arms matched; 1 only in OLD (erace_ddn)"
    lines, _ = cmp.compare_mean(old, new, "task_il")
    assert "| er_ddn | 3 | 90.00 ± 0.00 | 90.00 ± 0.00 | +0.00 ± 0.00 | 0 of 3 | 1 → 2 |" in lines
    assert cmp.main([str(old), str(new), "--mean"]) == 0
    write(tmp_path / "other", "der_hard", 0, 60.0)
    assert cmp.main([str(old), str(tmp_path / "other"), "--mean"]) == 1  # no arm in common
    assert cmp.arms({"seed3": {}, "a/b/seed1": {}, "a/b": {}}) == {".": {"seed3": {}}, "a/b": {"seed1": {}, "": {}}}


def test_check_recorded_tells_equal_moved_and_another_cpu(tmp_path):
    """bench/check_recorded.py: equal to the hundredth, a move on the recording CPU (fails), a move on another CPU
    (reported), a run not rerun (skipped), and the per-section lines."""
    import json

    chk = load("check_recorded")
    rows = [{"section": "3i", "suite": "s", "tag": "er", "seed": k, "cpu": "AMD", "class_il": v}
            for k, v in enumerate([40.0, 41.0, 42.0, 43.0])]

    def write(seed, class_il, cpu, **more):
        folder = tmp_path / "s" / "er" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({"final": {"class_il": class_il},
                                                         "versions": {"cpu": cpu, **more}}))

    write(0, 40.004, "AMD EPYC", cpu_id="AuthenticAMD 25/17/1")
    write(1, 41.5, "AMD EPYC")
    write(2, 40.0, "Intel(R) Xeon(R)")
    write(3, 44.0, "Intel(R) Xeon(R)")
    confirmed: list[dict] = []
    lines, found, failed = chk.check(tmp_path, rows, confirmed)
    assert (found, failed) == (4, 1)
    assert confirmed == [{"section": "3i", "suite": "s", "tag": "er", "seed": 0, "cpu": "AMD",
                          "cpu_id": "AuthenticAMD 25/17/1", "finished_at": ""}]  # only the equal, same-CPU run
    assert "| 3i | s/er/seed0 | 40.00 (AMD) | 40.00 (AMD EPYC, AuthenticAMD 25/17/1) | yes |" in lines
    assert "| 3i | s/er/seed1 | 41.00 (AMD) | 41.50 (AMD EPYC) | **no** |" in lines
    assert "| 3i | s/er/seed2 | 42.00 (AMD) | 40.00 (Intel(R) Xeon(R)) | no (another CPU) |" in lines
    assert "section 3i: 1 of 4 equal; 2 on the recording CPU, 1 of them differ" in lines
    # another CPU: only the means can agree (shifts -2 and +1: t(0.975, 1) * sd 2.12 / sqrt 2 = 19.06)
    assert ("section 3i, s/er on another CPU: 2 seeds, recorded 42.50 ± 0.71 (AMD), now 42.00 ± 2.83, "
            "shift -0.50 ± 19.06") in lines
    assert lines[-1] == f"4 of 4 recorded runs found under {tmp_path}"
    assert chk.main([str(tmp_path)]) == 1  # recorded.csv's own rows: none under tmp_path
    (tmp_path / "s" / "er" / "seed1" / "results.json").unlink()
    (tmp_path / "s" / "er" / "seed3" / "results.json").unlink()
    lines, found, failed = chk.check(tmp_path, rows)
    assert (found, failed) == (2, 0)
    assert "section 3i, s/er on another CPU: 1 seed, recorded 42.00 (AMD), now 40.00, shift -2.00 (one seed)" in lines
    lines, _, _ = chk.check(tmp_path, rows[:1])  # a section of one run: counts, not booleans
    assert "section 3i: 1 of 1 equal; 1 on the recording CPU" in lines
    # a run recorded on both CPUs is checked once, against the row of the CPU it ran on, whichever comes first
    for both in ([*rows, {**rows[2], "section": "3q", "cpu": "Intel", "class_il": 40.0}],
                 [{**rows[2], "section": "3q", "cpu": "Intel", "class_il": 40.0}, *rows]):
        lines, found, failed = chk.check(tmp_path, both)
        assert (found, failed) == (2, 0)
        assert "| 3q | s/er/seed2 | 40.00 (Intel) | 40.00 (Intel(R) Xeon(R)) | yes |" in lines
        assert not any("s/er/seed2 | 42.00" in line or "another CPU" in line for line in lines)
        assert lines[-1] == f"2 of 4 recorded runs found under {tmp_path}"


def test_rerun_ledger_adds_new_reruns_once_and_status_counts_them(tmp_path):
    """bench/check_recorded.py --ledger SINCE / --status: a run finished before SINCE (the recording itself) is not
    its own rerun, the same run on the same cpu_id is added once, and --status counts runs, not ledger rows."""
    chk = load("check_recorded")
    ledger = tmp_path / "reruns.csv"
    run = {"section": "3i", "suite": "s", "tag": "er", "cpu": "AMD", "cpu_id": "AuthenticAMD 26/2/1"}
    confirmed = [{**run, "seed": 0, "finished_at": "2026-12-06T09:00:00"},
                 {**run, "seed": 1, "finished_at": "2026-12-06T16:00:00"},
                 {**run, "seed": 2, "finished_at": ""}]
    assert chk.add_to_ledger(confirmed, "2026-12-06T15:00", ledger) == 1
    assert chk.add_to_ledger(confirmed, "2026-12-06T15:00", ledger) == 0
    assert chk.add_to_ledger([{**confirmed[0], "cpu_id": "AuthenticAMD 25/17/1"}], "2026-12-01", ledger) == 1
    assert ledger.read_text().splitlines() == [",".join(chk.LEDGER_FIELDS),
                                               "3i,s,er,1,AMD,AuthenticAMD 26/2/1,2026-12-06",
                                               "3i,s,er,0,AMD,AuthenticAMD 25/17/1,2026-12-06"]
    rows = [{"section": "3i", "suite": "s", "tag": "er", "seed": k, "cpu": "AMD", "class_il": 40.0} for k in range(6)]
    rows.append({"section": "3q", "suite": "s", "tag": "er", "seed": 1, "cpu": "Intel", "class_il": 41.0})
    twice = [*chk.reruns(ledger), {**chk.reruns(ledger)[0], "cpu_id": "AuthenticAMD 25/17/1"}]
    lines, counts = chk.status(rows, twice)  # seed 1 rerun on two AMD generations counts once; Intel's not at all
    assert lines == ["section 3i (AMD): 2 of 6 rerun on their CPU", "  not yet: s/er seeds 2-5",
                     "section 3q (Intel): 0 of 1 rerun on their CPU", "  not yet: s/er seeds 1",
                     "2 of 7 recorded runs rerun on their CPU and equal (AMD 2 of 6; Intel 0 of 1); 5 not yet"]
    assert (counts["rerun"], counts["runs AMD"]) == (2, 6)
    assert chk.seed_ranges([7, 0, 1, 2, 5, 8]) == "0-2, 5, 7-8"


def test_rerun_ledger_names_recorded_runs_and_benchmarks_quotes_its_count():
    """bench/reruns.csv: each row is a run of bench/recorded.csv rerun on its recording CPU (the cpu_id's vendor),
    once per cpu_id; BENCHMARKS.md quotes the count --status prints, so neither can drift from the other."""
    chk = load("check_recorded")
    recorded = {(chk.run_path(r), r["cpu"]) for r in chk.recorded()}
    ledger = chk.reruns()
    assert len({(chk.run_path(r), r["cpu_id"]) for r in ledger}) == len(ledger), "bench/reruns.csv: a row twice"
    for r in ledger:
        assert (chk.run_path(r), r["cpu"]) in recorded, (
            f"bench/reruns.csv: {chk.run_path(r)} not recorded on {r['cpu']}")
        assert not r["cpu_id"] or r["cpu_id"].startswith({"AMD": "AuthenticAMD", "Intel": "GenuineIntel"}[r["cpu"]]), (
            f"bench/reruns.csv: {chk.run_path(r)}: cpu_id {r['cpu_id']} is not an {r['cpu']} CPU")
        assert re.fullmatch(r"2026-\d\d-\d\d", r["date"]), f"bench/reruns.csv: {chk.run_path(r)}: date YYYY-MM-DD"
    assert chk.main(["--status"]) == 0
    with pytest.raises(SystemExit, match="not an ISO time"):
        chk.main(["--ledger", "yesterday"])
    total = chk.status(chk.recorded(), ledger)[0][-1]
    assert total.split(";")[0] in " ".join((ROOT / "BENCHMARKS.md").read_text().split()), (
        f"BENCHMARKS.md does not quote `bench/check_recorded.py --status`'s count: {total}")


def test_recorded_figures_are_the_ones_benchmarks_quotes():
    """bench/recorded.csv is copied from BENCHMARKS.md: each figure must stand in the section it names, and each run
    must be one `make bench` makes (so that a clean clone's bench/out can be checked against it)."""
    chk = load("check_recorded")
    run = load("run")
    made = set().union(*(runs_of_call(run, call).keys() for call in recipe_run_calls()))
    sections, current = {}, None
    for line in (ROOT / "BENCHMARKS.md").read_text().splitlines():
        heading = re.match(r"#+ (\w+)\. ", line)
        current = heading.group(1) if heading else current
        sections[current] = sections.get(current, "") + " " + line.strip()
    rows = chk.recorded()
    assert len(rows) > 200
    assert len({(chk.run_path(r), r["cpu"]) for r in rows}) == len(rows), (
        "bench/recorded.csv: a run recorded twice on one CPU")
    for r in rows:
        assert r["cpu"] in ("AMD", "Intel"), f"bench/recorded.csv: {chk.run_path(r)}: cpu is AMD or Intel"
        assert f"{r['class_il']:.2f}" in sections.get(r["section"], ""), (
            f"bench/recorded.csv: {chk.run_path(r)} = {r['class_il']:.2f} does not stand in section {r['section']}")
        assert (r["suite"], r["tag"], r["seed"]) in made, f"bench/recorded.csv: make bench never runs {chk.run_path(r)}"
    arms: dict[tuple, list[str]] = {}  # a list of three or more seeds stands in the section in seed order
    for r in sorted(rows, key=lambda r: r["seed"]):
        arms.setdefault((r["section"], r["suite"], r["tag"], r["cpu"]), []).append(f"{r['class_il']:.2f}")
    for (section, suite, tag, _), values in arms.items():
        if len(values) >= 3:
            assert ", ".join(values) in sections[section], (
                f"bench/recorded.csv: {suite}/{tag}'s seeds are not in the order section {section} gives them")
