"""An Optuna sweeper whose ``n_trials`` is the study's total, shared by every worker, and that resumes.

The stock hydra-optuna-sweeper runs ``n_trials`` trials *per process*: two workers on one study run 2N, and a
restarted sweep runs N more. Here (``hydra/sweeper=optuna_shared``):

- a trial is *claimed* when it is asked (RUNNING), queued for retry (WAITING), or finished (COMPLETE, FAIL);
  a worker asks only while fewer than ``n_trials`` are claimed, and after asking keeps a trial only if it is
  among the first ``n_trials`` claimed by number: two workers racing for the last slot cannot both run it
  (the loser is told PRUNED with the user attribute ``surplus`` and never runs);
- every running trial sends a heartbeat to the storage; a RUNNING trial whose heartbeat is older than
  ``grace_period`` seconds belongs to a dead worker: it is marked FAIL and its parameters are queued again
  (Optuna's ``RetryFailedTrialCallback``), so an interrupted sweep started again finishes exactly the
  trials that were missing and redoes none that finished;
- each trial's sampler draw is seeded from (sampler seed, trial number), so workers with the same seed do
  not all propose the same parameters;
- each trial's folder is ``<sweep dir>/trial_<number>``, so workers and restarts never overwrite each other.

It lives under ``hydra_plugins/`` because Hydra loads sweepers only from that namespace. Needs an RDB storage (SQLite file for one machine, e.g. PostgreSQL for many); without one it behaves like the
stock sweeper.
"""

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass

import optuna
from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import OmegaConf
from optuna.distributions import _convert_old_distribution_to_new_distribution
from optuna.storages import RDBStorage, RetryFailedTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

log = logging.getLogger(__name__)
# heartbeats outside Study.optimize are what this sweeper is for; the APIs are stable since Optuna 2.9
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=__name__)

CLAIMED = (TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE, TrialState.FAIL)


def claimed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards ``n_trials``, by number: all but surplus ones and failures already retried."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sorted((t for t in trials if t.state in CLAIMED and t.number not in retried
                   and not t.user_attrs.get("surplus")), key=lambda t: t.number)


def seed_sampler(sampler: optuna.samplers.BaseSampler, seed: int | None, trial_number: int) -> None:
    """Seed the sampler for one trial from (sweep seed, trial number): a single worker's sweep stays
    reproducible, and workers sharing a study never draw the same parameters from the same seed."""
    if seed is None:
        sampler.reseed_rng()
        return
    for owner in (sampler, getattr(sampler, "_random_sampler", None)):
        rng = getattr(getattr(owner, "_rng", None), "rng", None)
        if rng is not None:
            rng.seed((seed * 1_000_003 + trial_number) % 2**32)


class SharedStudyImpl(OptunaSweeperImpl):
    def __init__(self, *args, heartbeat_interval: int, grace_period: int) -> None:
        super().__init__(*args)
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period

    def _storage(self) -> object:
        if not isinstance(self.storage, str):
            return self.storage
        import sqlalchemy.exc

        # workers started together race to create the schema of a new database: the loser's alembic insert
        # fails (UNIQUE constraint on alembic_version) or meets a lock; the winner's schema is then there
        for attempt in range(10):
            try:
                return RDBStorage(self.storage, heartbeat_interval=self.heartbeat_interval,
                                  grace_period=self.grace_period,
                                  failed_trial_callback=RetryFailedTrialCallback(max_retry=None))
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
                if attempt == 9:
                    raise
                time.sleep(0.5 + attempt)

    def _values(self, ret, n_directions: int) -> list[float]:
        value = ret.return_value  # raises the job's own exception when it failed
        values = [float(value)] if n_directions == 1 else [float(v) for v in value]
        if len(values) != n_directions:
            raise ValueError(f"the task returned {len(values)} values for {n_directions} directions")
        return values

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config() + list(arguments)
        space, fixed = create_params_from_overrides(params_conf)
        space = {**(self.search_space_distributions or {}), **space}
        for name in fixed:
            space.pop(name, None)
        # the stock sweeper builds Optuna's deprecated distribution classes, which a retried trial, read back
        # from the storage, no longer matches ("different distribution kind"): use the current ones
        space = {k: _convert_old_distribution_to_new_distribution(d) for k, d in space.items()}
        directions = self._get_directions()
        study = optuna.create_study(study_name=self.study_name, storage=self._storage(), sampler=self.sampler,
                                    directions=directions, load_if_exists=True)
        shared = isinstance(self.storage, str)
        log.info(f"Study {study.study_name} in {self.storage}: {self.n_trials} trials in total, shared by all workers")
        ran = 0
        while True:
            if shared:
                fail_stale_trials(study)  # a dead worker's trials go back to the queue (WAITING)
            claimed = claimed_trials(study)
            to_ask = self.n_trials - len(claimed) + sum(t.state == TrialState.WAITING for t in claimed)
            if to_ask <= 0:
                running = sum(t.state == TrialState.RUNNING for t in claimed)
                if shared and running:  # other workers' trials, or a dead worker's not yet stale: wait
                    log.info(f"Waiting for {running} running trial(s) of other workers (or for them to go stale)")
                    time.sleep(self.heartbeat_interval)
                    continue
                break
            trials = [study.ask() for _ in range(min(self.n_jobs, to_ask))]
            keep = {t.number for t in claimed_trials(study)[: self.n_trials]}
            for t in [t for t in trials if t.number not in keep]:
                t.set_user_attr("surplus", True)  # another worker claimed the last slots first
                study.tell(t, state=TrialState.PRUNED)
            trials = [t for t in trials if t.number in keep]
            if not trials:
                break
            overrides = []
            for t in trials:
                seed_sampler(study.sampler, OmegaConf.select(self.config, "hydra.sweeper.sampler.seed"), t.number)
                overrides.append((*self._configure_trials([t], space, fixed)[0], f"hydra.sweep.subdir=trial_{t.number}"))
            with contextlib.ExitStack() as beats:
                if shared:
                    for t in trials:
                        beats.enter_context(get_heartbeat_thread(t._trial_id, study._storage))
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            failures = 0
            for trial, ret in zip(trials, returns):
                try:
                    study.tell(trial, values=self._values(ret, len(directions)))
                except Exception as e:  # noqa: BLE001  (any job error: the trial failed, the sweep goes on)
                    trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning(f"Trial {trial.number} failed: {e}")
                    failures += 1
            ran += len(trials)
            if failures / len(returns) > self.max_failure_rate:
                raise RuntimeError(f"{failures} of {len(returns)} trials failed "
                                   f"(max_failure_rate={self.max_failure_rate}); see the trial logs")
        done = [t for t in claimed_trials(study) if t.state == TrialState.COMPLETE]
        log.info(f"This worker ran {ran} trials; the study has {len(done)} complete of {self.n_trials}")
        if done and len(directions) == 1:
            best = max(done, key=lambda t: t.value) if directions[0] == "maximize" else min(done, key=lambda t: t.value)
            summary = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            OmegaConf.save(OmegaConf.create(summary), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")


class SharedStudySweeper(OptunaSweeper):
    """``OptunaSweeper`` with a study-wide trial budget, heartbeats and retry of interrupted trials."""

    def __init__(self, sampler, direction, storage, study_name, n_trials: int, n_jobs: int,
                 max_failure_rate: float, search_space, custom_search_space, params,
                 heartbeat_interval: int = 30, grace_period: int = 90) -> None:
        # the parent's __init__ only builds its implementation object: build ours instead
        self.sweeper = SharedStudyImpl(sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
                                       search_space, custom_search_space, params,
                                       heartbeat_interval=heartbeat_interval, grace_period=grace_period)


@dataclass
class SharedOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.ddn_cl_sweeper.shared_study_sweeper.SharedStudySweeper"
    n_jobs: int = 1
    # seconds between a running trial's heartbeats, and without one before the trial counts as dead
    heartbeat_interval: int = 30
    grace_period: int = 90


ConfigStore.instance().store(group="hydra/sweeper", name="optuna_shared", node=SharedOptunaSweeperConf,
                             provider="ddn-cl")
