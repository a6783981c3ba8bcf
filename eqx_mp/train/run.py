"""A training run: set up (or resume), run the epochs, evaluate the best model, write the outputs.

One run writes into ``config.output``: ``checkpoint.eqx`` (after every epoch and every
``checkpoint_every`` seconds; the one it replaces is kept as ``checkpoint.prev.eqx``),
``log.jsonl`` (one JSON record per epoch), and at the end ``model.eqx`` (the best-validation
averaged weights), ``run.json`` and ``parity.png``. A run resumed from its checkpoint continues
exactly where it stopped: same weights, optimiser state, data order and counters, so with
``time_budget=0`` it ends with the same model, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..data import Dataset, load_dataset
from .batches import RunData, compilations, prepare
from .checkpoint import read_checkpoint, save_model
from .config import TrainConfig
from .e0s import e0_frames, with_reference_energies
from .evaluate import baseline_metrics, baseline_predictor, evaluate, metrics_by_config_type
from .loop import EpochLoop
from .plot import parity_plot
from .report import PLOT_FILE, history_columns, rewrite_log, write_run_json
from .state import Checkpoint, Progress, TrainState

__all__ = ["TrainResult", "train", "RESUMABLE_CHANGES"]

#: Configuration fields a resumed run may change (they do not affect the weights).
RESUMABLE_CHANGES = ("data", "output", "plot", "checkpoint_every")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained potential: the averaged (EMA) weights of the best validation epoch.
        metrics: Test-split metrics (:func:`~eqx_mp.train.evaluate.error_metrics` keys), the
            same for the trivial baseline (``baseline_`` prefix), and ``train_seconds``,
            ``epochs``, ``steps``, ``best_epoch``, ``nonfinite_steps``, ``restores``.
        history: Per-epoch lists (``epoch``, ``steps``, ``seconds``, ``lr``, ``train_loss``,
            ``valid_energy_mae``, ``valid_force_mae``, ...), the columns of ``log.jsonl``.
        splits: ``train``/``valid``/``test`` frame indices into the data set.
        baseline: The trivial predictor (:func:`~eqx_mp.train.evaluate.baseline_predictor`).
    """

    model: Any
    metrics: dict[str, Any]
    history: dict[str, list[Any]]
    splits: dict[str, np.ndarray]
    baseline: dict[str, float]


def _require_train_extra() -> None:
    missing = []
    for mod in ("optax", "tqdm", "matplotlib"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ImportError(
            f"training needs {', '.join(missing)}: install the train extra with "
            "pip install 'eqx_mp[train]'"
        )


def _new_run(config: TrainConfig, data: RunData, e0s: str,
             isolated: Dataset | None) -> tuple[Checkpoint, Progress]:
    ckpt = Checkpoint(config, data.elements, key=jax.random.PRNGKey(config.seed))
    model = with_reference_energies(ckpt.state.model, data.sets["train"], e0s, isolated)
    state = TrainState(model, model, ckpt.state.opt_state, ckpt.state.counters)
    ckpt = ckpt.replace(state=state, good=state, best=model)
    progress = Progress(data_fingerprint=data.fingerprint)
    progress.next_epoch_order(len(data.splits["train"]), config.seed)
    return ckpt, progress


def _resumed_run(config: TrainConfig, data: RunData) -> tuple[Checkpoint, Progress]:
    ckpt, progress, problems = read_checkpoint(config.output)
    for problem in problems:
        print(f"warning: {problem}; resuming from the previous checkpoint", flush=True)
    saved = dataclasses.asdict(ckpt.config)
    for key, value in dataclasses.asdict(config).items():
        if key not in RESUMABLE_CHANGES and saved.get(key) != value:
            raise ValueError(f"cannot resume {config.output} with {key}={value!r}: the run was "
                             f"started with {key}={saved.get(key)!r}")
    if progress.data_fingerprint != data.fingerprint:
        raise ValueError(f"cannot resume {config.output}: the data set differs from the one the "
                         f"run was started with")
    return ckpt, progress


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    *,
    progress: bool = True,
    save: bool = True,
    resume: bool = False,
) -> TrainResult:
    """Train a :class:`~eqx_mp.models.Potential` with Adam on energies and forces.

    Arguments:
        config: The run configuration (validated when it was built).
        dataset: The data (default: ``load_dataset(config.data)``). Loaded files are validated,
            so bad data fails before any compilation; a ``Dataset`` built by hand is used as is.
        progress: Show a tqdm progress bar (loss and validation MAEs per epoch).
        save: Write checkpoints, ``log.jsonl``, ``model.eqx``, ``run.json`` and (if
            ``config.plot``) ``parity.png`` into ``config.output``.
        resume: Continue the run in ``config.output`` from its checkpoint (the configuration
            must be the one it was started with, up to :data:`RESUMABLE_CHANGES`).

    Returns:
        A :class:`TrainResult` with the best-validation averaged model and its test metrics.

    Raises:
        ValueError: for settings that do not fit the data or the machine (split larger than the
            data set, more devices than visible), before any compilation; when resuming, for a
            different configuration or data set, or when no checkpoint verifies.
        FloatingPointError: if the run keeps producing non-finite steps after the learning rate
            was halved ten times.
    """
    _require_train_extra()
    compiled = compilations()
    if dataset is None:
        dataset = load_dataset(config.data)
    # With isolated-atom E0s the isolated atoms give the E0s and are not trained on.
    e0s, isolated, dataset = e0_frames(config.e0s, dataset)
    data = prepare(config, dataset)
    if resume:
        ckpt, prog = _resumed_run(config, data)
    else:
        ckpt, prog = _new_run(config, data, e0s, isolated)
    if not prog.finished:
        ckpt, prog = EpochLoop(config, data, ckpt, prog, show_progress=progress, save=save).run()
    return _finish(config, data, ckpt, prog, save, compiled)


def _finish(config: TrainConfig, data: RunData, ckpt: Checkpoint, progress: Progress,
            save: bool, compiled: dict[str, int]) -> TrainResult:
    """``model.eqx`` first; then test metrics of the best model next to the baseline, ``run.json``."""
    model = ckpt.best
    out = Path(config.output)
    if save:  # whatever fails below, the trained model is on disk
        save_model(out, model)
        rewrite_log(out, progress.history)  # complete even if the run was resumed at its end
    baseline = baseline_predictor(data.sets["train"])
    test_set = data.sets["test"]
    metrics: dict[str, Any] = {}
    test = None
    if test_set.num_frames:
        test = evaluate(model, test_set, graphs=data.graphs["test"], layout=data.eval_layout)
        metrics = {k: v for k, v in test.items() if isinstance(v, float)}
        metrics.update(baseline_metrics(baseline, test_set))
        by_type = metrics_by_config_type(test_set, test)
        if by_type:
            metrics["config_types"] = by_type
    now = compilations()
    metrics.update(train_seconds=progress.elapsed, epochs=progress.epoch, steps=progress.steps,
                   best_epoch=progress.best_epoch,
                   nonfinite_steps=int(jax.device_get(ckpt.state.counters.nonfinite)),
                   restores=int(jax.device_get(ckpt.state.counters.restores)),
                   **{f"compilations_{k}": now[k] - compiled[k] for k in now})
    result = TrainResult(model, metrics, history_columns(progress.history), data.splits, baseline)
    if save:
        write_run_json(out, config, baseline=baseline, metrics=metrics, history=progress.history,
                       splits={k: v.tolist() for k, v in data.splits.items()},
                       layout=dataclasses.asdict(data.train_layout))
        if config.plot and test is not None:
            parity_plot(test_set, test, out / PLOT_FILE)
    return result
