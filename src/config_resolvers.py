"""OmegaConf resolvers used by conf/: registered on import (src.train and the tests import this)."""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def tuned(key: str, *, _root_: DictConfig) -> object:
    """A baseline's tuned value for the run's dataset, setting and buffer size.

    ``baseline.tuned`` maps a row name (``<dataset>/<setting>``, ``<dataset>``, ``default/<setting>`` or
    ``default``; the first that exists wins) to ``{buffer size: {key: value}}``; the largest listed size <= ``buffer`` is used
    (the smallest listed one below that). One place per value; a command-line override of the
    interpolating key (e.g. ``baseline.method.alpha=0.2``) wins over the table.
    """
    table = _root_.baseline.tuned
    ds, setting, buffer = _root_.dataset.name, _root_.setting.name, int(_root_.buffer)
    for row in (f"{ds}/{setting}", ds, f"default/{setting}", "default"):
        if row in table:
            rows = table[row]
            break
    else:
        raise KeyError(f"baseline.tuned of {_root_.baseline.name} has no row for {ds}/{setting} and no default")
    sizes = sorted(int(k) for k in rows)
    size = max((s for s in sizes if s <= buffer), default=sizes[0])
    return rows[size][key]


if not OmegaConf.has_resolver("tuned"):
    OmegaConf.register_new_resolver("tuned", tuned)


def sqlite_url(folder: str, name: str = "optuna.db") -> str:
    """``sqlite:///<folder>/<name>``, creating ``folder``: Hydra makes the sweep folder only when the first
    job starts, after the sweeper has opened its study storage."""
    from pathlib import Path

    Path(folder).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder}/{name}"


if not OmegaConf.has_resolver("sqlite_in"):
    OmegaConf.register_new_resolver("sqlite_in", sqlite_url)
