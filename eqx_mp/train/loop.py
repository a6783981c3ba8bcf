"""The training loop: data split, initial model, epochs of compiled steps, model selection."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset, load_dataset, split_indices
from ..models import Potential
from .checkpoint import save_model
from .config import TrainConfig
from .evaluate import baseline_maes, evaluate
from .optim import make_optimizer, make_schedule, schedule_count
from .plot import parity_plot
from .step import make_step

__all__ = ["TrainResult", "train", "RUN_FILE", "PLOT_FILE"]

RUN_FILE = "run.json"
PLOT_FILE = "parity.png"


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained potential (best validation score).
        metrics: Test-split MAEs (``energy_mae`` eV, ``force_mae`` eV/Å) and the baselines
            (``baseline_energy_mae``, ``baseline_force_mae``), plus ``train_seconds``,
            ``epochs`` and ``steps``.
        history: Per-epoch ``epoch``, ``seconds``, ``train_loss``, ``valid_energy_mae``,
            ``valid_force_mae`` lists.
        splits: ``train``/``valid``/``test`` frame indices into the data set.
        mean_energy: Mean training energy (eV), the baseline predictor.
    """

    model: Potential
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    splits: dict[str, np.ndarray]
    mean_energy: float


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


def _initial_shift(model: Potential, dataset: Dataset) -> Potential:
    """Per-element energy shifts (least squares on composition) and an energy scale."""
    elements = np.unique(dataset.numbers)
    counts = (dataset.numbers[:, :, None] == elements[None, None, :]).sum(1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(counts, dataset.energies, rcond=None)
    residual = dataset.energies - counts @ coef
    # Atomic-energy scale: residual spread per atom, but at least the force scale times 1 Å.
    scale = max(float(np.std(residual)) / math.sqrt(dataset.num_atoms), float(np.std(dataset.forces)))
    shifts = np.zeros(model.element_energies.shape, np.float32)
    shifts[elements] = coef
    model = eqx.tree_at(lambda m: m.element_energies, model, jnp.asarray(shifts))
    return eqx.tree_at(lambda m: m.energy_scale, model, jnp.asarray(scale, jnp.float32))


@dataclasses.dataclass
class _Run:
    """The pieces of a run that the epoch loop needs (built once by :func:`_setup`)."""

    config: TrainConfig
    train_set: Dataset
    valid_set: Dataset
    test_set: Dataset
    splits: dict[str, np.ndarray]
    batch_size: int
    steps_per_epoch: int
    mesh: Any


def _setup(config: TrainConfig, dataset: Dataset) -> _Run:
    num_devices = _num_devices(config)
    tr, va, te = split_indices(
        dataset.num_frames, num_valid=config.num_valid, num_test=config.num_test, seed=config.seed
    )
    train_set = dataset.subset(tr)
    batch_size = min(config.batch_size, train_set.num_frames)
    batch_size -= batch_size % num_devices  # a multiple of the devices (at most config's)
    if batch_size < 1:
        raise ValueError(
            f"{train_set.num_frames} training frames are fewer than the {num_devices} devices"
        )
    mesh = None
    if num_devices > 1:
        from .. import parallel

        mesh = parallel.make_mesh(num_devices)
    return _Run(config, train_set, dataset.subset(va), dataset.subset(te),
                {"train": tr, "valid": va, "test": te}, batch_size,
                train_set.num_frames // batch_size, mesh)


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    *,
    progress: bool = True,
    save: bool = True,
) -> TrainResult:
    """Train a :class:`~eqx_mp.models.Potential` with Adam on energies and forces.

    Arguments:
        config: The run configuration (validated when it was built).
        dataset: The data (default: ``load_dataset(config.data)``); it is validated on loading,
            so bad data fails here, before any compilation.
        progress: Show a tqdm progress bar (loss and validation MAEs per epoch).
        save: Write ``model.eqx``, ``run.json`` and (if ``config.plot``) ``parity.png`` into
            ``config.output``.

    Returns:
        A :class:`TrainResult` with the best-validation model and its test metrics.

    Raises:
        ValueError: for settings that do not fit the data or the machine (split larger than the
            data set, more devices than visible), before any compilation.
    """
    _require_train_extra()
    if dataset is None:
        dataset = load_dataset(config.data)
    run = _setup(config, dataset)
    model = Potential(**config.model_hyperparameters(int(dataset.numbers.max())),
                      key=jax.random.PRNGKey(config.seed))
    model = _initial_shift(model, run.train_set)
    mean_energy = float(np.mean(run.train_set.energies))
    model, history, info = _optimise(run, model, progress)
    test = evaluate(model, run.test_set)
    metrics = dict(energy_mae=test["energy_mae"], force_mae=test["force_mae"],
                   **baseline_maes(mean_energy, run.test_set), **info)
    result = TrainResult(model, metrics, history, run.splits, mean_energy)
    if save:
        _write_outputs(result, config, test, run.test_set)
    return result


def _optimise(run: _Run, model: Potential, progress: bool) -> tuple[Potential, dict, dict]:
    """The epoch loop; returns the best model, the history and the step/time counts."""
    from tqdm.auto import tqdm

    config = run.config
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    step = make_step(optimizer, float(config.force_weight))
    schedule = make_schedule(config, config.epochs * run.steps_per_epoch)
    data = (jnp.asarray(run.train_set.positions), jnp.asarray(run.train_set.numbers),
            jnp.asarray(run.train_set.energies, jnp.float32), jnp.asarray(run.train_set.forces))
    if run.mesh is not None:
        # Data parallelism: replicated parameters, batch axis split over the devices; the mean
        # over the global batch in the loss makes XLA average the gradients across devices.
        from .. import parallel

        model, opt_state = parallel.replicate((model, opt_state), run.mesh)
    rng = np.random.default_rng(config.seed)
    history: dict[str, list[float]] = {
        k: [] for k in ("epoch", "seconds", "train_loss", "valid_energy_mae", "valid_force_mae")
    }
    best = (math.inf, model)
    budget = float(config.time_budget)
    start = time.perf_counter()
    total_steps, compile_seconds, epoch = 0, None, 0
    bar = tqdm(total=config.epochs if budget == 0 else None, disable=not progress, unit="epoch",
               desc="training", dynamic_ncols=True)
    epoch_start = start
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(run.train_set.num_frames)
        losses = []
        for s in range(run.steps_per_epoch):
            elapsed = time.perf_counter() - start
            if budget and elapsed > budget and losses:
                break  # out of time: finish this (partial) epoch with a validation pass
            count = schedule_count(total_steps, config.epochs * run.steps_per_epoch,
                                   budget=budget, elapsed=elapsed, compile_seconds=compile_seconds)
            idx = order[s * run.batch_size : (s + 1) * run.batch_size]
            batch = tuple(a[idx] for a in data)
            if run.mesh is not None:
                batch = parallel.shard_batch(batch, run.mesh)
            model, opt_state, loss = step(model, opt_state, *batch,
                                          jnp.asarray(schedule(count), jnp.float32))
            losses.append(loss)
            total_steps += 1
            if compile_seconds is None:
                loss.block_until_ready()
                compile_seconds = time.perf_counter() - start
        train_loss = float(np.mean([float(x) for x in losses]))
        if not math.isfinite(train_loss):
            bar.close()
            raise FloatingPointError(
                f"the training loss became {train_loss} in epoch {epoch}; lower --lr "
                f"(now {config.lr}) or --force-weight (now {config.force_weight})"
            )
        val = evaluate(model, run.valid_set) if run.valid_set.num_frames else None
        now = time.perf_counter()
        elapsed, per_epoch, epoch_start = now - start, now - epoch_start, now
        history["epoch"].append(epoch)
        history["seconds"].append(elapsed)
        history["train_loss"].append(train_loss)
        if val is not None:
            history["valid_energy_mae"].append(val["energy_mae"])
            history["valid_force_mae"].append(val["force_mae"])
            # Model selection score: the loss's form, with MAEs in place of RMSEs.
            val_loss = val["energy_mae"] ** 2 + config.force_weight * val["force_mae"] ** 2
        else:
            val_loss = train_loss
        if val_loss < best[0]:
            best = (val_loss, model)
        # The first epoch includes compilation: estimate the pace from the latest epoch.
        if budget and epoch > 1:
            bar.total = min(config.epochs, epoch + max(0, int((budget - elapsed) // per_epoch)))
        postfix = {"loss": f"{train_loss:.4g}"}
        if val is not None:
            postfix["val_E_meV"] = f"{1e3 * val['energy_mae']:.1f}"
            postfix["val_F_meV/Å"] = f"{1e3 * val['force_mae']:.1f}"
        bar.set_postfix(postfix)
        bar.update(1)
        if budget and elapsed > budget:
            break
    bar.close()
    info = dict(train_seconds=time.perf_counter() - start, epochs=epoch, steps=total_steps)
    return best[1], history, info


def _write_outputs(result: TrainResult, config: TrainConfig, test: dict, test_set: Dataset) -> None:
    out = Path(config.output)
    save_model(out, result.model)
    run = dict(
        config=dataclasses.asdict(config),
        data=None if config.data is None else str(Path(config.data).resolve()),
        mean_energy=result.mean_energy,
        metrics=result.metrics,
        history=result.history,
        splits={k: v.tolist() for k, v in result.splits.items()},
    )
    (out / RUN_FILE).write_text(json.dumps(run, indent=1))
    if config.plot:
        parity_plot(test_set, test, out / PLOT_FILE)
