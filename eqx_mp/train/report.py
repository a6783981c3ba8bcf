"""What a run shows and writes besides checkpoints: progress bar, ``log.jsonl``, ``run.json``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from ..data import EMBEDDED_DATASETS
from .config import TrainConfig

__all__ = ["RUN_FILE", "PLOT_FILE", "LOG_FILE", "progress_bar", "update_bar", "rewrite_log",
           "append_log", "write_run_json", "history_columns"]

RUN_FILE = "run.json"
PLOT_FILE = "parity.png"
LOG_FILE = "log.jsonl"


def _json_safe(value: Any) -> Any:
    """NaN and infinities as ``None`` (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _log_line(record: dict[str, Any]) -> str:
    return json.dumps(_json_safe(record), sort_keys=True) + "\n"


def progress_bar(config: TrainConfig, show: bool, initial: int) -> Any:
    """A tqdm bar over epochs (its total is estimated from the pace when there is a time budget).

    Arguments:
        config: The run configuration.
        show: Whether to show it.
        initial: Epochs already done (a resumed run).

    Returns:
        The tqdm bar.
    """
    from tqdm.auto import tqdm

    return tqdm(total=config.epochs if config.time_budget == 0 else None, initial=initial,
                disable=not show, unit="epoch", desc="training", dynamic_ncols=True)


def update_bar(bar: Any, config: TrainConfig, record: dict[str, Any], elapsed: float) -> None:
    """Advance the bar by one epoch and show the loss and validation MAEs.

    Arguments:
        bar: From :func:`progress_bar`.
        config: The run configuration.
        record: The epoch's log record.
        elapsed: Seconds of training so far.
    """
    epoch = record["epoch"]
    if config.time_budget and epoch > 1:  # estimate the epochs that fit from the average pace
        pace = elapsed / epoch
        bar.total = min(config.epochs, epoch + max(0, int((config.time_budget - elapsed) // pace)))
    postfix = {"loss": f"{record['train_loss']:.4g}"}
    if "valid_energy_mae" in record:
        postfix["val_E_meV"] = f"{1e3 * record['valid_energy_mae']:.1f}"
        postfix["val_F_meV/Å"] = f"{1e3 * record['valid_force_mae']:.1f}"
    bar.set_postfix(postfix)
    bar.update(1)


def rewrite_log(output: Path, history: list[dict[str, Any]]) -> None:
    """Write ``log.jsonl`` from the history (a resumed run drops lines past its checkpoint).

    Arguments:
        output: The run directory.
        history: The per-epoch records.
    """
    output.mkdir(parents=True, exist_ok=True)
    (output / LOG_FILE).write_text("".join(_log_line(r) for r in history))


def append_log(output: Path, record: dict[str, Any]) -> None:
    """Append one epoch's record to ``log.jsonl``.

    Arguments:
        output: The run directory.
        record: The epoch's record.
    """
    with open(output / LOG_FILE, "a") as f:
        f.write(_log_line(record))


def history_columns(history: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The per-epoch records as columns (``None`` where an epoch lacks a key).

    Arguments:
        history: The per-epoch records.

    Returns:
        ``{key: [value per epoch]}``.
    """
    keys = dict.fromkeys(k for r in history for k in r)
    return {k: [r.get(k) for r in history] for k in keys}


def write_run_json(output: Path, config: TrainConfig, **fields: Any) -> Path:
    """Write ``run.json``: the configuration, the data (an embedded name or an absolute path), more.

    Arguments:
        output: The run directory.
        config: The run configuration.
        **fields: More JSON-serialisable entries (metrics, history, splits, baseline, ...).

    Returns:
        The path written.
    """
    data = config.data
    if data is not None and data not in EMBEDDED_DATASETS:
        data = str(Path(data).resolve())
    run = dict(config=dataclasses.asdict(config), data=data, **fields)
    path = output / RUN_FILE
    path.write_text(json.dumps(_json_safe(run), indent=1))
    return path
