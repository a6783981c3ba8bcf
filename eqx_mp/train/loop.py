"""The training run: data split, a new or resumed state, epochs of compiled steps, the outputs.

One run writes into ``config.output``: ``checkpoint.eqx`` (after every epoch and every
``checkpoint_every`` seconds; the one it replaces is kept as ``checkpoint.prev.eqx``),
``log.jsonl`` (one JSON record per epoch), and at the end ``model.eqx`` (the best-validation
averaged weights), ``run.json`` and ``parity.png``. A run resumed from its checkpoint continues
exactly where it stopped: same weights, optimiser state, data order and counters, so with
``time_budget=0`` it ends with the same model, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import parallel
from ..batching import Graph, GraphBatch
from ..data import Dataset, load_dataset, split_indices
from ..models import Potential
from .batches import Layout, compilations, dataset_graphs, layout_for, make_batches
from .checkpoint import read_checkpoint, save_model, write_checkpoint
from .config import TrainConfig
from .e0s import with_reference_energies
from .evaluate import baseline_metrics, baseline_predictor, evaluate
from .optim import make_optimizer, make_schedule, schedule_count
from .plot import parity_plot
from .report import (PLOT_FILE, append_log, history_columns, progress_bar, rewrite_log,
                     update_bar, write_run_json)
from .state import Checkpoint, Progress, TrainState
from .step import LossWeights, make_step

__all__ = ["TrainResult", "train", "fingerprint", "RESUMABLE_CHANGES"]

#: Configuration fields a resumed run may change (they do not affect the weights).
RESUMABLE_CHANGES = ("data", "output", "plot", "checkpoint_every")

#: Restores of the last good state after which a run gives up (learning rate / 2**10).
_MAX_RESTORES = 10


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


def _num_devices(config: TrainConfig) -> int:
    num = jax.device_count() if config.devices == 0 else config.devices
    if not 1 <= num <= jax.device_count():
        raise ValueError(
            f"devices must be between 0 (all) and the {jax.device_count()} visible device(s), "
            f"got {config.devices}"
        )
    if config.batch_size % num:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of the {num} devices "
            f"used for data-parallel training"
        )
    return num


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 of a data set's arrays (a resumed run must train on the same data).

    Arguments:
        dataset: The data set.

    Returns:
        A hex digest.
    """
    h = hashlib.sha256()
    for a in (dataset.energies, dataset.atom_counts, dataset.atom_positions, dataset.atom_numbers,
              dataset.atom_forces, dataset.cells, dataset.pbc, dataset.stresses):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


#: Frames per compiled call of the validation and test predictions.
EVAL_BATCH_SIZE = 50


@dataclasses.dataclass
class _Data:
    """The data side of a run: splits, their graphs, batch layouts, device mesh."""

    splits: dict[str, np.ndarray]
    sets: dict[str, Dataset]
    graphs: dict[str, list[Graph]]
    train_layout: Layout
    eval_layout: Layout
    mean_atoms: float
    elements: tuple[int, ...]
    mesh: Any
    fingerprint: str


def _prepare(config: TrainConfig, dataset: Dataset) -> _Data:
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='float64' needs double precision enabled before anything else: "
                         "jax.config.update('jax_enable_x64', True) (the command line does this)")
    num_devices = _num_devices(config)
    tr, va, te = split_indices(
        dataset.num_frames, num_valid=config.num_valid, num_test=config.num_test, seed=config.seed
    )
    if len(tr) < num_devices:
        raise ValueError(f"{len(tr)} training frames are fewer than the {num_devices} devices")
    splits = {"train": tr, "valid": va, "test": te}
    graphs = dataset_graphs(dataset, config.cutoff)
    # A batch of at most the training frames; a multiple of the devices (at most config's).
    batch_size = min(config.batch_size, len(tr))
    batch_size -= batch_size % num_devices
    train_graphs = [graphs[i] for i in tr]
    mesh = None
    if num_devices > 1:
        from .. import parallel

        mesh = parallel.make_mesh(num_devices)
    return _Data(
        splits=splits,
        sets={k: dataset.subset(v) for k, v in splits.items()},
        graphs={k: [graphs[i] for i in v] for k, v in splits.items()},
        train_layout=layout_for(train_graphs, batch_size, num_devices),
        eval_layout=layout_for(graphs, min(EVAL_BATCH_SIZE, dataset.num_frames)),
        mean_atoms=float(np.mean(dataset.atom_counts[tr])),
        elements=tuple(int(z) for z in np.unique(dataset.atom_numbers)),
        mesh=mesh,
        fingerprint=fingerprint(dataset),
    )


def _new_run(config: TrainConfig, data: _Data) -> tuple[Checkpoint, Progress]:
    ckpt = Checkpoint(config, data.elements, key=jax.random.PRNGKey(config.seed))
    model = with_reference_energies(ckpt.state.model, data.sets["train"], config.e0s)
    state = TrainState(model, model, ckpt.state.opt_state)
    ckpt = ckpt.replace(state=state, good=state, best=model)
    progress = Progress(data_fingerprint=data.fingerprint)
    progress.next_epoch_order(len(data.splits["train"]), config.seed)
    return ckpt, progress


def _resumed_run(config: TrainConfig, data: _Data) -> tuple[Checkpoint, Progress]:
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
    data = _prepare(config, dataset)
    if resume:
        ckpt, prog = _resumed_run(config, data)
    else:
        ckpt, prog = _new_run(config, data)
    if not prog.finished:
        ckpt, prog = _Loop(config, data, ckpt, prog, show_progress=progress, save=save).run()
    return _finish(config, data, ckpt, prog, save, compiled)


def _selection_score(metrics: dict[str, Any], weights: LossWeights) -> float:
    """The loss's form with MAEs in place of RMSEs (lower is better; the saved epoch's)."""
    score = (weights.atoms * metrics["energy_per_atom_mae"]) ** 2
    score += weights.force * metrics["force_mae"] ** 2
    if weights.stress and "stress_mae" in metrics:
        score += weights.stress * metrics["stress_mae"] ** 2
    return float(score)


class _Loop:
    """The epoch loop of one process (a fresh run or a resumed one)."""

    def __init__(self, config: TrainConfig, data: _Data, ckpt: Checkpoint, progress: Progress,
                 *, show_progress: bool, save: bool):
        self.config, self.data, self.progress, self.save = config, data, progress, save
        self.weights = LossWeights(data.mean_atoms, float(config.force_weight),
                                   float(config.stress_weight)
                                   if data.sets["train"].stresses is not None else 0.0)
        self.step_fn = make_step(make_optimizer(config), self.weights, float(config.ema_decay))
        self.schedule = make_schedule(config, config.epochs)  # counted in epochs
        self.dtype = jnp.dtype(config.dtype)
        self.ckpt = ckpt
        if data.mesh is not None:
            # Data parallelism: replicated parameters, a stack of per-device batches split over
            # the devices; the loss is a mean over all of them, so XLA averages the gradients.
            self.ckpt = parallel.replicate(ckpt, data.mesh)
        self.state = self.ckpt.state  # the part every step changes (self.ckpt.state is stale)
        self.t0 = time.perf_counter() - progress.elapsed
        self.compiled_here = False
        self.last_checkpoint = time.perf_counter()
        self.lr = config.lr
        self.bar = progress_bar(config, show_progress, progress.epoch)
        if save:
            rewrite_log(Path(config.output), progress.history)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def out_of_time(self) -> bool:
        return bool(self.config.time_budget) and self.elapsed() > self.config.time_budget

    def run(self) -> tuple[Checkpoint, Progress]:
        p = self.progress
        while p.epoch < self.config.epochs:
            batches = make_batches(self.data.graphs["train"], p.order, self.data.train_layout,
                                   self.dtype)
            while p.step_in_epoch < len(batches):
                if self.out_of_time() and p.epoch_losses:
                    break  # out of time: finish this (partial) epoch with a validation pass
                self.step(batches[p.step_in_epoch], p.epoch + p.step_in_epoch / len(batches))
                if self.save and time.perf_counter() - self.last_checkpoint >= self.config.checkpoint_every:
                    self.checkpoint()
            self.end_epoch()
            if self.out_of_time():
                break
            p.next_epoch_order(len(self.data.splits["train"]), self.config.seed)
        self.bar.close()
        p.finished = True
        if self.save:
            self.checkpoint()
        return self.ckpt.replace(state=self.state), p

    def step(self, batch: GraphBatch, epochs_done: float) -> None:
        p, c = self.progress, self.config
        count = schedule_count(epochs_done, c.epochs, budget=float(c.time_budget),
                               elapsed=self.elapsed(), compile_seconds=p.compile_seconds)
        self.lr = float(self.schedule(count)) * p.lr_factor
        if self.data.mesh is not None:
            batch = parallel.shard_batch(batch, self.data.mesh)
        lr_dtype = self.state.opt_state.hyperparams["learning_rate"].dtype
        state, loss, ok = self.step_fn(self.state, batch, jnp.asarray(self.lr, lr_dtype),
                                       jnp.asarray(p.updates, jnp.int32))
        ok, loss = bool(ok), float(loss)
        if not self.compiled_here:
            self.compiled_here = True
            if p.compile_seconds is None:
                p.compile_seconds = self.elapsed()
        p.steps += 1
        p.step_in_epoch += 1
        if ok:
            p.updates += 1
            p.nonfinite_streak = 0
            p.epoch_losses.append(loss)
            self.state = state
        else:
            self.nonfinite()

    def nonfinite(self) -> None:
        p = self.progress
        p.nonfinite_steps += 1
        p.nonfinite_streak += 1
        if p.nonfinite_streak < self.config.nonfinite_patience:
            return
        if p.restores >= _MAX_RESTORES:
            raise FloatingPointError(
                f"{p.nonfinite_steps} non-finite steps; the learning rate was halved "
                f"{p.restores} times and the last good state restored, and the steps are still "
                f"not finite: check the data, lower --lr (now {self.config.lr}) or "
                f"--force-weight (now {self.config.force_weight})"
            )
        p.restores += 1
        p.nonfinite_streak = 0
        p.lr_factor *= 0.5
        self.state = self.ckpt.good
        print(f"warning: {self.config.nonfinite_patience} non-finite steps in a row (step "
              f"{p.steps}); restored the state of epoch {p.epoch} and halved the learning rate "
              f"(factor {p.lr_factor:g})", flush=True)

    def end_epoch(self) -> None:
        p, c = self.progress, self.config
        p.epoch += 1
        train_loss = float(np.mean(p.epoch_losses)) if p.epoch_losses else math.nan
        record: dict[str, Any] = dict(epoch=p.epoch, steps=p.steps, lr=self.lr, train_loss=train_loss)
        if len(self.data.splits["valid"]):
            val = self.evaluate(self.state.ema, "valid")
            record.update({f"valid_{k}": v for k, v in val.items() if isinstance(v, float)})
            score = _selection_score(val, self.weights)
        else:
            score = train_loss
        record["best"] = bool(score < p.best_score)  # False for NaN
        if record["best"]:
            p.best_score, p.best_epoch = float(score), p.epoch
            self.ckpt = self.ckpt.replace(best=self.state.ema)
        self.ckpt = self.ckpt.replace(good=self.state)
        record.update(seconds=self.elapsed(), nonfinite_steps=p.nonfinite_steps, restores=p.restores)
        p.history.append(record)
        if self.save:
            append_log(Path(c.output), record)
            self.checkpoint()
        update_bar(self.bar, c, record, self.elapsed())

    def evaluate(self, model: Potential, split: str) -> dict[str, Any]:
        return evaluate(model, self.data.sets[split], graphs=self.data.graphs[split],
                        layout=self.data.eval_layout)

    def checkpoint(self) -> None:
        self.progress.elapsed = self.elapsed()
        self.ckpt = self.ckpt.replace(state=self.state)
        write_checkpoint(self.config.output, self.ckpt, self.progress)
        self.last_checkpoint = time.perf_counter()


def _finish(config: TrainConfig, data: _Data, ckpt: Checkpoint, progress: Progress,
            save: bool, compiled: dict[str, int]) -> TrainResult:
    """Test metrics of the best model next to the baseline; ``model.eqx``, ``run.json``, plot."""
    model = ckpt.best
    baseline = baseline_predictor(data.sets["train"])
    test = evaluate(model, data.sets["test"], graphs=data.graphs["test"], layout=data.eval_layout)
    metrics = {k: v for k, v in test.items() if isinstance(v, float)}
    metrics.update(baseline_metrics(baseline, data.sets["test"]))
    now = compilations()
    metrics.update(train_seconds=progress.elapsed, epochs=progress.epoch, steps=progress.steps,
                   best_epoch=progress.best_epoch, nonfinite_steps=progress.nonfinite_steps,
                   restores=progress.restores,
                   **{f"compilations_{k}": now[k] - compiled[k] for k in now})
    result = TrainResult(model, metrics, history_columns(progress.history), data.splits, baseline)
    if save:
        out = Path(config.output)
        save_model(out, model)
        write_run_json(out, config, baseline=baseline, metrics=metrics, history=progress.history,
                       splits={k: v.tolist() for k, v in data.splits.items()},
                       layout=dataclasses.asdict(data.train_layout))
        if config.plot:
            parity_plot(data.sets["test"], test, out / PLOT_FILE)
    return result
