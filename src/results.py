"""The machine-readable results file of a run and the short table printed at its end."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FILE = "results.json"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (``{"ddn": {"lr": 1}}`` -> ``{"ddn.lr": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# config keys a rerun may change without changing the run: where it writes, whether it resumed, the progress bar
RUN_NEUTRAL_KEYS = ("resume", "output_dir", "trainer.enable_progress_bar")


def config_differences(saved: dict[str, Any], current: dict[str, Any], shared_only: bool = False) -> list[str]:
    """Dotted keys whose value differs between two recorded configs (plain dicts), ``RUN_NEUTRAL_KEYS`` left out.
    ``shared_only``: skip keys only one side has, as a run recorded before an option existed could not record it."""
    old, new = flatten(saved), flatten(current)
    keys = old.keys() & new.keys() if shared_only else old.keys() | new.keys()
    return sorted(k for k in keys if k not in RUN_NEUTRAL_KEYS and old.get(k) != new.get(k))


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy to lists, NaN to null."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(float(obj)) or math.isinf(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_id(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's vendor, family, model and stepping (``GenuineIntel 6/207/2``; from Linux's cpuinfo, else ``?``).
    The model name alone may not tell two generations apart (``Intel(R) Xeon(R) Processor``), and two
    generations may pick different math kernels."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "?"
    parts = [fields.get(k, "?") for k in ("cpu family", "model", "stepping")]
    return f"{fields.get('vendor_id', '?')} {'/'.join(parts)}"


def versions() -> dict[str, str | int]:
    """Software and hardware a run ran on. A run is bit-exact on one machine at one thread count; torch and its
    math libraries pick their kernels per CPU (``cpu``, ``cpu_id``, ``cpu_capability``) and split reductions by
    thread count (``torch_threads``), so another CPU or thread count gives the same seed a slightly different float
    path (BENCHMARKS.md, sections 2f and 7)."""
    import hydra
    import pytorch_lightning
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "pytorch_lightning": pytorch_lightning.__version__, "hydra": hydra.__version__,
            "cuda": str(torch.version.cuda), "machine": platform.machine(), "cpu": cpu_name(), "cpu_id": cpu_id(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none"}


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write then rename: a killed run never leaves a half-written file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2))
    os.replace(tmp, path)


def load_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def format_table(class_il: np.ndarray, task_il: np.ndarray, final: dict[str, float], title: str) -> str:
    """Accuracy matrix (class-IL / task-IL per cell) and the final metrics, as plain text."""
    n = len(class_il)
    lines = [title, "after task | " + " | ".join(f"task {i}".rjust(11) for i in range(n))]
    for t in range(n):
        if np.isnan(class_il[t, 0]):
            continue
        cells = [f"{class_il[t, i]:5.1f}/{task_il[t, i]:5.1f}" if i <= t else " " * 11 for i in range(n)]
        lines.append(f"{t:>10} | " + " | ".join(cells))
    lines.append("cells: class-IL / task-IL accuracy (%)")
    lines.append("final: " + ", ".join(f"{k}={v:.2f}" for k, v in final.items() if isinstance(v, float)))
    return "\n".join(lines)
