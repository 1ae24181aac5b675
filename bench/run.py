"""Benchmark suites: ``python bench/run.py SUITE [--seeds N]`` runs the suite's configs in one process
(one after the other, so timings are comparable) into bench/out/SUITE/, then writes its report. Rerunning a
suite skips its finished runs (refusing one whose recorded config differs from the requested run's) and continues
a killed one from its last checkpoint (exactly, as ``resume=``).

Data: extract ../shared/data/*.tar.gz into data/ first (``make data``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

import src.config_resolvers  # noqa: E402,F401
from src.checkpoint import load_unfinished  # noqa: E402
from src.report import report  # noqa: E402
from src.results import RESULTS_FILE, config_differences  # noqa: E402
from src.train import train  # noqa: E402

COMMON = ["trainer.enable_progress_bar=false", "logger=none"]
METHODS = ["er", "der", "derpp", "clser", "erace"]
MNIST_OFFLINE = ["dataset=seq_mnist", "setting=offline", "setting.epochs=5"]  # the offline protocol, shortened
# offline Split CIFAR-10 shortened to fit a CPU: 2 epochs per task (not 50), the online protocol's ResNet width
CIFAR_OFFLINE = ["dataset=seq_cifar10", "setting=offline", "setting.epochs=2", "setting.nf=20"]


def grid(dataset: list[str], baselines: list[str], labels: list[str], extra: list[list[str]] | None = None):
    for b, lab, ex in itertools.product(baselines, labels, extra or [[]]):
        yield [f"baseline={b}", f"labels={lab}", *dataset, *ex]


SUITES = {
    # embedded data: every method with and without DDN, plus the bounds
    "digits": lambda: [*grid([], METHODS, ["hard", "ddn"]), *grid([], ["finetune", "joint"], ["hard"]),
                       *grid([], ["er"], ["hard_extra", "ddn_frozen"])],
    "mnist": lambda: [*grid(["dataset=seq_mnist"], METHODS, ["hard", "ddn"]),
                      *grid(["dataset=seq_mnist"], ["finetune", "joint"], ["hard"]),
                      # the controls of issue #3; DER too, whose own loss has no CE on the buffer that the α-term adds
                      *grid(["dataset=seq_mnist"], ["er", "der"], ["hard_extra", "ddn_frozen"])],
    # issue #7's label-variant table on Split MNIST (with section 2b's hard / hard_extra / ddn_frozen / ddn)
    "mnist_labels": lambda: [*grid(["dataset=seq_mnist"], ["er"], ["smooth", "random", "l2y"])],
    "cifar_core": lambda: [*grid(["dataset=seq_cifar10"], ["er", "finetune"], ["hard"]),
                           *grid(["dataset=seq_cifar10"], ["er"], ["ddn"])],
    # the directions of issue #3 (what makes DDN's outer step informative), paired seeds, embedded data
    "ddn_directions": lambda: [*grid([], ["er"], ["hard", "hard_extra", "ddn"]),
                               *grid([], ["er"], ["ddn"], [["ddn.val_source=heldout_buffer"], ["ddn.val_balanced=true"],
                                                            ["ddn.old_to_old=true"], ["ddn.boundary_iters=50"],
                                                            ["ddn.per_step=false", "ddn.boundary_iters=100"],
                                                            ["ddn.lr=0.01"], ["beta=0.5"], ["alpha=0.3"],
                                                            ["ddn.unroll_scope=full"], ["ddn.every=5"],
                                                            ["ddn.unroll_steps=3"], ["ddn.label_mix=0.3"]])],
    # offline (50 epochs per task): the small buffer is replayed many times, where soft labels should matter
    "ddn_offline": lambda: [*grid(["setting=offline"], ["er"], ["hard", "hard_extra", "ddn", "ddn_frozen"])],
    # a short offline Split MNIST (5 epochs per task instead of 50) that fits this CPU
    "mnist_offline": lambda: [*grid(MNIST_OFFLINE, ["er"], ["hard", "hard_extra", "ddn", "ddn_frozen"]),
                              *grid(MNIST_OFFLINE, ["er"], ["ddn"], [["ddn.label_mix=0.3"]]),
                              *grid(MNIST_OFFLINE, ["der", "derpp", "erace", "clser"], ["hard", "ddn"])],
    # issue #7's "outer learning rate" direction: DDN's label network learning 10x slower (paired with mnist_offline)
    "mnist_offline_outer_lr": lambda: [*grid(MNIST_OFFLINE, METHODS, ["ddn"], [["ddn.lr=0.0001"]])],
    # issue #7's "validation set's composition" direction where DDN loses most (offline; paired with mnist_offline)
    "mnist_offline_val": lambda: [*grid(MNIST_OFFLINE, ["der", "derpp", "erace"], ["ddn"],
                                        [["ddn.val_source=heldout_buffer"], ["ddn.val_balanced=true"]]),
                                  *grid(MNIST_OFFLINE, ["er", "clser"], ["ddn"], [["ddn.val_source=heldout_buffer"]]),
                                  # ER-ACE's two controls: is its heldout_buffer "gain" the added CE term, or the
                                  # untrained label network's labels (as for ER, section 5b)?
                                  *grid(MNIST_OFFLINE, ["erace"], ["hard_extra", "ddn_frozen"])],
    # issue #7's shortened offline protocol: replaying a small buffer for several epochs, ER with and without DDN
    "cifar_offline": lambda: [*grid(CIFAR_OFFLINE, ["er"], ["hard", "ddn"])],
    # the ER-ACE paper's other online column (crop + flip on stream and buffer draws): the ER anchor 40.3 and DDN there
    "cifar_online_aug": lambda: [*grid(["dataset=seq_cifar10"], ["er"], ["hard", "ddn", "ddn_frozen"],
                                       [["setting.augment=true"]])],
    # the frozen-label control (the α-term with DDN's untrained labels) for the methods other than ER
    "cifar_frozen": lambda: [*grid(["dataset=seq_cifar10"], ["derpp", "erace", "clser"], ["ddn_frozen"])],
    "cifar_methods": lambda: [*grid(["dataset=seq_cifar10"], ["derpp", "erace"], ["hard", "ddn"])],
    # is DDN's effect on CIFAR-10 the extra buffer weight or the learned labels? (the two controls of issue #3)
    "cifar_controls": lambda: [*grid(["dataset=seq_cifar10"], ["er"], ["hard_extra", "ddn_frozen"])],
    # issue #7's main table: every replay method with and without DDN, online Split CIFAR-10
    "cifar_online": lambda: [*grid(["dataset=seq_cifar10"], ["er", "derpp", "erace", "clser"], ["hard", "ddn"])],
    # issue #3's directions on CIFAR-10 (seed-paired with cifar_online's er_ddn): what the outer step rewards
    "cifar_ddn_directions": lambda: [*grid(["dataset=seq_cifar10"], ["er"], ["ddn"],
                                           [["ddn.old_to_old=true"], ["ddn.label_mix=0.3"],
                                            ["ddn.val_source=heldout_buffer"],
                                            ["beta=0.5"], ["alpha=0.3"],
                                            # issue #7's remaining directions: K-step unrolls, the whole network
                                            # unrolled (the head scope sees only the last layer), fewer outer steps
                                            ["ddn.unroll_steps=3"], ["ddn.unroll_scope=full"], ["ddn.every=5"]])],
    # DDN with the draw-shared part of the hypergradient removed (ddn.center_hypergrad), paired with `mnist` / `cifar_online`
    "mnist_center": lambda: [*grid(["dataset=seq_mnist"], ["er", "derpp", "erace", "clser"], ["ddn"],
                                   [["ddn.center_hypergrad=true"]])],
    # DDN with a standardised input representation (ddn.input_norm), paired with `mnist`'s er_ddn (issue #7: "the DDN input")
    "mnist_input_norm": lambda: [*grid(["dataset=seq_mnist"], METHODS, ["ddn"], [["ddn.input_norm=true"]])],
    "cifar_center": lambda: [*grid(["dataset=seq_cifar10"], ["er", "derpp", "erace", "clser"], ["ddn"],
                                   [["ddn.center_hypergrad=true"]])],
    # issue #7's "the gradient-alignment diagnostics say whether the outer step helps": cosine of a replay draw's
    # gradient (learned soft vs hard labels, same θ and draw) with the gradient of held-out data of all tasks seen.
    # The diagnostic does not change a run, so these are also the plain DDN runs of their seeds.
    "mnist_offline_alignment": lambda: [*grid(MNIST_OFFLINE, METHODS, ["ddn"], [["diagnostics.align_every=50"]]),
                                        *grid(MNIST_OFFLINE, ["er"], ["ddn_frozen"], [["diagnostics.align_every=50"]]),
                                        # without the stream batch in V (section 5f: ER reaches its frozen control)
                                        *grid(MNIST_OFFLINE, ["er", "erace"], ["ddn"],
                                              [["ddn.val_source=heldout_buffer", "diagnostics.align_every=50"]])],
    "cifar_alignment": lambda: [*grid(["dataset=seq_cifar10"], ["er"], ["ddn", "ddn_frozen", "hard"],
                                      [["diagnostics.align_every=100"]])],
    # the gaps to the ER-ACE paper (issue #4): what its reference code does differently from our defaults
    "cifar_gaps": lambda: [*grid(["dataset=seq_cifar10"], ["derpp"], ["hard"],
                                 [["baseline.lr.online=0.01", "setting.augment=true"],
                                  ["baseline.lr.online=0.01"], ["setting.concat_forward=false"]]),
                           *grid(["dataset=seq_cifar10"], ["erace"], ["hard"], [["setting.concat_forward=false"]])],
}


def tag_of(overrides: list[str]) -> str:
    """Folder name of a run: baseline_labels, then key-value of any further override (dataset omitted)."""
    parts = [o.split("=")[1] for o in overrides[:2]]
    parts += [f"{o.split('=')[0].split('.')[-1]}-{o.split('=')[1]}" for o in overrides[2:] if not o.startswith("dataset=")]
    return "_".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``argv``, default sys.argv); a suite or ``--only`` tag that does not exist is refused."""
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", choices=sorted(SUITES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--buffer", type=int, default=200)
    ap.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    ap.add_argument("--only", nargs="*", default=None, help="run only these tags (e.g. er_ddn finetune_hard)")
    # every figure in BENCHMARKS.md ran at one torch thread per run; another count takes another float path
    # (a DDN run near its collapse point can end 30 points apart), so a rerun is only exact at the same count
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1, as recorded; 0: torch's "
                    "choice); run several suites side by side for speed")
    ap.add_argument("--out", default=None, help="folder name under bench/out (default: the suite's name)")
    ap.add_argument("--no-report", action="store_true", help="skip the report (parallel workers of one suite)")
    args = ap.parse_args(argv)
    runs = SUITES[args.suite]()
    unknown = sorted(set(args.only or []) - {tag_of(o) for o in runs})
    if unknown:  # a mistyped tag would otherwise run nothing and say nothing
        ap.error(f"--only {' '.join(unknown)}: not a run of suite {args.suite}; its runs are: "
                 + " ".join(tag_of(o) for o in runs))
    return args


def refuse_other_finished_run(run_dir: Path, cfg: DictConfig) -> None:
    """Exit when ``run_dir`` holds a finished run of another config: skipping it as done would leave the
    requested run unmade and its figure silently the old one's (e.g. the same tag with another ``--extra``)."""
    saved = json.loads((run_dir / RESULTS_FILE).read_text())["config"]
    diffs = config_differences(saved, OmegaConf.to_container(cfg, resolve=True), shared_only=True)
    if diffs:
        sys.exit(f"bench/run.py: {run_dir} holds a finished run of another config ({', '.join(diffs)}): "
                 "pass --out NAME to write this one elsewhere, or delete that folder to rerun it")


def main() -> None:
    args = parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = ROOT / "bench" / "out" / (args.out or args.suite)
    runs = SUITES[args.suite]()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for overrides in runs:
                tag = tag_of(overrides)
                if args.only and tag not in args.only:
                    continue
                run_dir = out / tag / f"seed{seed}"
                cfg = compose("train", overrides=[*COMMON, f"buffer={args.buffer}", f"seed={seed}",
                                                  f"output_dir={run_dir}", *overrides, *args.extra])
                if (run_dir / RESULTS_FILE).exists():  # resumable: finished runs are kept ...
                    refuse_other_finished_run(run_dir, cfg)
                    continue
                t0 = time.time()
                res = train(cfg, load_unfinished(cfg))  # a killed run continues from its last checkpoint
                print(f"[{time.strftime('%H:%M:%S')}] {tag} seed={seed}: class-IL {res['final'].get('class_il', 0):.2f}"
                      f" task-IL {res['final'].get('task_il', 0):.2f} ({time.time() - t0:.0f}s)", flush=True)
    if not args.no_report:
        print(report(out))


if __name__ == "__main__":
    main()
