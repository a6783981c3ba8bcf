"""Train an equivariant potential (energies + forces) and evaluate or reload it.

Command line (``eqx-mp-train`` is the same as ``python -m eqx_mp.train``)::

    python -m eqx_mp.train [--data FILE] [--time-budget S] [--output DIR] ...   # train
    python -m eqx_mp.train predict --model runs/latest [--data FILE]          # evaluate

Python API: :class:`TrainConfig`, :func:`train`, :func:`evaluate`, :func:`baseline_maes`,
:func:`save_model`, :func:`load_model`, :func:`main`.

Training needs the ``train`` extra (optax, tqdm, matplotlib); loading and evaluating a saved
model needs only the core dependencies.

Checkpoint format (``DIR/model.eqx``): one JSON line with the :class:`~eqx_mp.models.Potential`
hyper-parameters, then the leaves written by ``eqx.tree_serialise_leaves``. ``DIR/run.json``
holds the training configuration, the data split, the measured metrics and the baselines;
``DIR/parity.png`` the parity plot of the test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .data import Dataset, load_dataset, split_indices
from .models import RADIAL_BASES, Potential, batched_energy_and_forces

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "evaluate",
    "predict",
    "parity_plot",
    "baseline_maes",
    "save_model",
    "load_model",
    "format_metrics",
    "main",
]

#: A real number (``int`` accepted where a ``float`` is expected, also under beartype).
Real = float | int

MODEL_FILE = "model.eqx"
RUN_FILE = "run.json"
PLOT_FILE = "parity.png"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the command-line flags, one to one).

    Arguments:
        data: Data set path (``None``: the embedded Cu/Pt icosahedron set).
        output: Output directory for the model, ``run.json`` and the parity plot.
        time_budget: Wall-clock seconds for the optimisation loop (compilation included);
            ``0`` means no time limit (then ``epochs`` alone decides).
        epochs: Maximum number of epochs.
        lr: Initial learning rate (Adam).
        lr_final: Final learning rate; the rate decays exponentially from ``lr`` to
            ``lr_final`` over the run (over the epochs, or over the time budget left after
            the first step's compilation if that ends sooner).
        batch_size: Structures per optimisation step.
        features: Feature channels of the model.
        max_degree: Maximum degree of the equivariant features and the pair basis.
        num_basis: Number of radial basis functions.
        cutoff: Cutoff radius in Å.
        num_iterations: Number of message-passing blocks.
        radial_basis: Radial functions of the pair basis (a name from
            :data:`eqx_mp.models.RADIAL_BASES`).
        force_weight: Weight of the force term in the loss
            ``mean((E - E_ref)**2) + force_weight * mean((F - F_ref)**2)`` (eV², eV²/Å²).
        num_valid: Validation frames (model selection: the epoch with the lowest
            ``MAE_E**2 + force_weight * MAE_F**2`` on them is kept).
        num_test: Held-out test frames (reported at the end, never used for training).
        seed: Seed for the data split, the initialisation and the batch order.
        plot: Whether to write the parity plot.
        devices: Data-parallel training over this many devices (``0``: all visible devices):
            parameters are replicated, each batch is split across the devices
            (:mod:`eqx_mp.parallel`); ``batch_size`` must be a multiple of it.
    """

    data: str | None = None
    output: str = "runs/latest"
    time_budget: Real = 150.0
    epochs: int = 1000
    lr: Real = 1e-2
    lr_final: Real = 5e-4
    batch_size: int = 16
    features: int = 32
    max_degree: int = 1
    num_basis: int = 16
    cutoff: Real = 6.0
    num_iterations: int = 2
    radial_basis: str = "basic_gaussian"
    force_weight: Real = 10.0
    num_valid: int = 200
    num_test: int = 200
    seed: int = 0
    plot: bool = True
    devices: int = 1

    def model_hyperparameters(self, max_atomic_number: int) -> dict[str, Any]:
        """The keyword arguments of :class:`~eqx_mp.models.Potential` for this run."""
        return dict(
            features=self.features,
            max_degree=self.max_degree,
            num_basis=self.num_basis,
            cutoff=self.cutoff,
            num_iterations=self.num_iterations,
            max_atomic_number=max_atomic_number,
            radial_basis=self.radial_basis,
        )


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
    history: dict[str, list[Real]]
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


# ----------------------------------------------------------------------------- checkpoints


def save_model(path: str | os.PathLike[str], model: Potential) -> Path:
    """Save a potential: one JSON line of hyper-parameters, then its serialised leaves.

    Arguments:
        path: A directory (the file ``model.eqx`` is written inside it) or a file path.
        model: The :class:`~eqx_mp.models.Potential` to save.

    Returns:
        The path of the written file.
    """
    p = Path(path)
    if p.suffix != ".eqx":
        p.mkdir(parents=True, exist_ok=True)
        p = p / MODEL_FILE
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
    hp = model.hyperparameters()
    with open(p, "wb") as f:
        f.write((json.dumps(hp) + "\n").encode())
        eqx.tree_serialise_leaves(f, model)
    return p


def load_model(path: str | os.PathLike[str]) -> Potential:
    """Load a potential written by :func:`save_model` (or by a training run).

    The skeleton is built with ``eqx.filter_eval_shape`` (no parameters are initialised), then
    the saved leaves are read into it.

    Arguments:
        path: A run directory containing ``model.eqx``, or the ``.eqx`` file itself.

    Returns:
        The :class:`~eqx_mp.models.Potential`, bit-identical to the saved one.

    Raises:
        FileNotFoundError: if there is no model file at ``path``.
        ValueError: if the file does not start with a JSON line of hyper-parameters.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise FileNotFoundError(f"no saved model at {p} (expected a run directory or a .eqx file)")
    with open(p, "rb") as f:
        first = f.readline()
        try:
            hp = json.loads(first.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{p}: the first line must be a JSON object of hyper-parameters ({err})"
            ) from err
        if not isinstance(hp, dict):
            raise ValueError(f"{p}: the first line must be a JSON object, got {first[:80]!r}")
        skeleton = eqx.filter_eval_shape(Potential, **hp, key=jax.random.PRNGKey(0))
        return eqx.tree_deserialise_leaves(f, skeleton)


# ----------------------------------------------------------------------------- evaluation


@eqx.filter_jit
def _predict_batch(model: Potential, positions: jax.Array, numbers: jax.Array):
    return batched_energy_and_forces(model, positions, numbers)


def predict(
    model: Potential, dataset: Dataset, *, batch_size: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces of every frame.

    Arguments:
        model: The potential.
        dataset: ``F`` frames.
        batch_size: Frames per compiled call (the last batch is padded, so one compilation).

    Returns:
        ``(energies, forces)``: float64 ``(F,)`` in eV and float32 ``(F, N, 3)`` in eV/Å.

    Raises:
        ValueError: if the data set has elements beyond the model's ``max_atomic_number``.
    """
    if int(dataset.numbers.max()) > model.max_atomic_number:
        raise ValueError(
            f"{dataset.source}: atomic number {int(dataset.numbers.max())} is larger than the "
            f"model's max_atomic_number {model.max_atomic_number} (elements it was trained on)"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num = dataset.num_frames
    bs = min(batch_size, num)
    e_out, f_out = [], []
    for start in range(0, num, bs):
        idx = np.arange(start, start + bs)
        valid = idx < num
        idx = np.where(valid, idx, num - 1)
        e, f = _predict_batch(model, jnp.asarray(dataset.positions[idx]), jnp.asarray(dataset.numbers[idx]))
        e_out.append(np.asarray(e)[valid])
        f_out.append(np.asarray(f)[valid])
    return np.concatenate(e_out).astype(np.float64), np.concatenate(f_out)


def evaluate(
    model: Potential, dataset: Dataset, *, batch_size: int = 50
) -> dict[str, Any]:
    """Mean absolute errors of a potential on a data set.

    Arguments:
        model: The potential.
        dataset: ``F`` frames with reference energies and forces.
        batch_size: Frames per compiled call.

    Returns:
        A dict with ``energy_mae`` (eV, per structure), ``force_mae`` (eV/Å, per Cartesian
        component) and the predictions ``energies`` ``(F,)`` and ``forces`` ``(F, N, 3)``.
    """
    e, f = predict(model, dataset, batch_size=batch_size)
    return dict(
        energy_mae=float(np.mean(np.abs(e - dataset.energies))),
        force_mae=float(np.mean(np.abs(f.astype(np.float64) - dataset.forces))),
        energies=e,
        forces=f,
    )


def baseline_maes(mean_energy: Real, dataset: Dataset) -> dict[str, float]:
    """MAEs of the trivial predictor: a constant energy and zero forces.

    Arguments:
        mean_energy: The constant energy (eV), normally the mean training energy.
        dataset: Frames to evaluate on.

    Returns:
        ``{"baseline_energy_mae": eV, "baseline_force_mae": eV/Å}``.
    """
    return dict(
        baseline_energy_mae=float(np.mean(np.abs(dataset.energies - mean_energy))),
        baseline_force_mae=float(np.mean(np.abs(dataset.forces.astype(np.float64)))),
    )


def format_metrics(metrics: dict[str, Any], label: str = "test") -> str:
    """The two result lines printed after training and by ``predict``.

    Arguments:
        metrics: A dict with ``energy_mae``, ``force_mae``, ``baseline_energy_mae`` and
            ``baseline_force_mae`` (eV and eV/Å).
        label: Which split the numbers are for.

    Returns:
        Two lines, MAEs in meV and meV/Å, model vs baseline.
    """
    return (
        f"{label} energy MAE: {1e3 * metrics['energy_mae']:.3f} meV  "
        f"(baseline, mean-energy predictor: {1e3 * metrics['baseline_energy_mae']:.3f} meV)\n"
        f"{label} force MAE: {1e3 * metrics['force_mae']:.3f} meV/Å  "
        f"(baseline, zero-force predictor: {1e3 * metrics['baseline_force_mae']:.3f} meV/Å)"
    )


# ----------------------------------------------------------------------------- training


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


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    *,
    progress: bool = True,
    save: bool = True,
) -> TrainResult:
    """Train a :class:`~eqx_mp.models.Potential` with Adam on energies and forces.

    Arguments:
        config: The run configuration.
        dataset: The data (default: ``load_dataset(config.data)``); it is validated on loading,
            so bad data fails here, before any compilation.
        progress: Show a tqdm progress bar (loss and validation MAEs per epoch).
        save: Write ``model.eqx``, ``run.json`` and (if ``config.plot``) ``parity.png`` into
            ``config.output``.

    Returns:
        A :class:`TrainResult` with the best-validation model and its test metrics.

    Raises:
        ValueError: for inconsistent settings (split larger than the data set, non-positive
            batch size, ...), before any compilation.
    """
    _require_train_extra()
    import optax
    from tqdm.auto import tqdm

    if dataset is None:
        dataset = load_dataset(config.data)
    for name in ("epochs", "batch_size", "features", "num_basis", "num_iterations"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.max_degree < 0:
        raise ValueError(f"max_degree must be >= 0, got {config.max_degree}")
    if config.time_budget < 0:
        raise ValueError(f"time_budget must be >= 0 seconds (0 = no limit), got {config.time_budget}")
    if not (config.lr > 0 and config.lr_final > 0):
        raise ValueError(f"lr and lr_final must be > 0, got {config.lr} and {config.lr_final}")
    if config.force_weight < 0:
        raise ValueError(f"force_weight must be >= 0, got {config.force_weight}")
    num_devices = jax.device_count() if config.devices == 0 else config.devices
    if not 1 <= num_devices <= jax.device_count():
        raise ValueError(
            f"devices must be between 0 (all) and the {jax.device_count()} visible device(s), "
            f"got {config.devices}"
        )
    if config.batch_size % num_devices:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of the {num_devices} devices "
            f"used for data-parallel training"
        )
    tr_idx, va_idx, te_idx = split_indices(
        dataset.num_frames, num_valid=config.num_valid, num_test=config.num_test, seed=config.seed
    )
    train_set, valid_set, test_set = (dataset.subset(i) for i in (tr_idx, va_idx, te_idx))
    max_z = int(dataset.numbers.max())
    batch_size = min(config.batch_size, train_set.num_frames)
    batch_size -= batch_size % num_devices  # a multiple of the devices (at most config's)
    if batch_size < 1:
        raise ValueError(
            f"{train_set.num_frames} training frames are fewer than the {num_devices} devices"
        )
    steps_per_epoch = train_set.num_frames // batch_size

    key = jax.random.PRNGKey(config.seed)
    model = Potential(**config.model_hyperparameters(max_z), key=key)
    model = _initial_shift(model, train_set)
    mean_energy = float(np.mean(train_set.energies))

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=config.lr)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    force_weight = float(config.force_weight)

    @eqx.filter_jit
    def step(model, opt_state, positions, numbers, energies, forces, lr):
        def loss_fn(m):
            e, f = batched_energy_and_forces(m, positions, numbers)
            return jnp.mean((e - energies) ** 2) + force_weight * jnp.mean((f - forces) ** 2)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        opt_state.hyperparams["learning_rate"] = lr
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    positions = jnp.asarray(train_set.positions)
    numbers = jnp.asarray(train_set.numbers)
    energies = jnp.asarray(train_set.energies, jnp.float32)
    forces = jnp.asarray(train_set.forces)
    mesh = None
    if num_devices > 1:
        # Data parallelism: replicated parameters, batch axis split over the devices; the mean
        # over the global batch in the loss makes XLA average the gradients across devices.
        from . import parallel

        mesh = parallel.make_mesh(num_devices)
        model, opt_state = parallel.replicate((model, opt_state), mesh)

    rng = np.random.default_rng(config.seed)
    history: dict[str, list[Real]] = {
        k: [] for k in ("epoch", "seconds", "train_loss", "valid_energy_mae", "valid_force_mae")
    }
    best = (math.inf, model)
    budget = float(config.time_budget)
    start = time.perf_counter()
    total_steps = 0
    bar = tqdm(
        total=config.epochs if budget == 0 else None,
        disable=not progress,
        unit="epoch",
        desc="training",
        dynamic_ncols=True,
    )
    epoch = 0
    epoch_start = start
    compiled_at: float | None = None
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(train_set.num_frames)
        losses = []
        for s in range(steps_per_epoch):
            now = time.perf_counter()
            if budget and now - start > budget and losses:
                break  # out of time: finish this (partial) epoch with a validation pass
            # Learning-rate decay over the epochs or over the time left after compilation.
            frac = (epoch - 1 + s / steps_per_epoch) / config.epochs
            if budget and compiled_at is not None:
                frac = max(frac, (now - compiled_at) / max(budget - (compiled_at - start), 1e-9))
            lr = config.lr * (config.lr_final / config.lr) ** min(frac, 1.0)
            idx = order[s * batch_size : (s + 1) * batch_size]
            batch = (positions[idx], numbers[idx], energies[idx], forces[idx])
            if mesh is not None:
                batch = parallel.shard_batch(batch, mesh)
            model, opt_state, loss = step(model, opt_state, *batch, jnp.asarray(lr, jnp.float32))
            losses.append(loss)
            total_steps += 1
            if compiled_at is None:
                loss.block_until_ready()
                compiled_at = time.perf_counter()
        train_loss = float(np.mean([float(x) for x in losses]))
        if not math.isfinite(train_loss):
            bar.close()
            raise FloatingPointError(
                f"the training loss became {train_loss} in epoch {epoch}; lower --lr "
                f"(now {config.lr}) or --force-weight (now {config.force_weight})"
            )
        val = evaluate(model, valid_set) if valid_set.num_frames else None
        now = time.perf_counter()
        elapsed, per_epoch, epoch_start = now - start, now - epoch_start, now
        history["epoch"].append(epoch)
        history["seconds"].append(elapsed)
        history["train_loss"].append(train_loss)
        if val is not None:
            history["valid_energy_mae"].append(val["energy_mae"])
            history["valid_force_mae"].append(val["force_mae"])
            # Model selection score: the loss's form, with MAEs in place of RMSEs.
            val_loss = val["energy_mae"] ** 2 + force_weight * val["force_mae"] ** 2
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
    train_seconds = time.perf_counter() - start
    model = best[1]

    test = evaluate(model, test_set)
    metrics = dict(
        energy_mae=test["energy_mae"],
        force_mae=test["force_mae"],
        **baseline_maes(mean_energy, test_set),
        train_seconds=train_seconds,
        epochs=epoch,
        steps=total_steps,
    )
    splits = {"train": tr_idx, "valid": va_idx, "test": te_idx}
    result = TrainResult(model, metrics, history, splits, mean_energy)
    if save:
        out = Path(config.output)
        save_model(out, model)
        run = dict(
            config=dataclasses.asdict(config),
            data=None if config.data is None else str(Path(config.data).resolve()),
            mean_energy=mean_energy,
            metrics=metrics,
            history=history,
            splits={k: v.tolist() for k, v in splits.items()},
        )
        (out / RUN_FILE).write_text(json.dumps(run, indent=1))
        if config.plot:
            parity_plot(test_set, test, out / PLOT_FILE)
    return result


def parity_plot(dataset: Dataset, predictions: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a two-panel parity plot (energies, force components) as a PNG.

    Arguments:
        dataset: Reference frames.
        predictions: :func:`evaluate`'s output on ``dataset`` (``energies``, ``forces`` and MAEs).
        path: PNG file to write.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, ref, pred, name, unit, mae in (
        (axes[0], dataset.energies, predictions["energies"], "energy", "eV", predictions["energy_mae"]),
        (axes[1], dataset.forces.ravel(), predictions["forces"].ravel(), "force component", "eV/Å",
         predictions["force_mae"]),
    ):
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.set_title(f"{name}: MAE {1e3 * mae:.1f} m{unit}")
        ax.set_aspect("equal")
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


# ----------------------------------------------------------------------------- command line


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for on/off switches and ``None`` (their help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.nargs == 0 or action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``train`` argument parser.

    Returns:
        An ``argparse.ArgumentParser`` with one flag per :class:`TrainConfig` field (``plot`` as
        ``--no-plot``) plus ``--no-progress``.
    """
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="eqx-mp-train",
        description=(
            "Train an equivariant message-passing potential (energies + forces = -dE/dx) on the "
            "embedded Cu/Pt icosahedron data set or your own file, report test MAEs against the "
            "mean-energy / zero-force baseline, and save the model and a parity plot."
        ),
        epilog=(
            "Evaluate a saved model: eqx-mp-train predict --model DIR [--data FILE] "
            "(see 'eqx-mp-train predict --help'). Units: Å, eV, eV/Å."
        ),
        formatter_class=_HelpFormatter,
    )
    a = p.add_argument
    a("--data", default=d.data, metavar="FILE",
      help="data set: .npz with positions (F,N,3), numbers (N,) or (F,N), energies (F,), "
           "forces (F,N,3), or any ASE-readable file with energies and forces; "
           "default: the embedded Cu/Pt icosahedron set")
    a("--output", default=d.output, metavar="DIR",
      help="output directory for model.eqx, run.json and parity.png")
    a("--time-budget", type=float, default=d.time_budget, metavar="S",
      help="wall-clock seconds for training, compilation included (0 = no limit)")
    a("--epochs", type=int, default=d.epochs, help="maximum number of epochs")
    a("--lr", type=float, default=d.lr, help="initial Adam learning rate")
    a("--lr-final", type=float, default=d.lr_final,
      help="final learning rate (exponential decay over the epochs or over the time budget "
           "left after compilation, whichever ends sooner)")
    a("--batch-size", type=int, default=d.batch_size, help="structures per optimisation step")
    a("--features", type=int, default=d.features, help="feature channels")
    a("--max-degree", type=int, default=d.max_degree,
      help="maximum degree of equivariant features and of the pair basis")
    a("--num-basis", type=int, default=d.num_basis, help="number of radial basis functions")
    a("--cutoff", type=float, default=d.cutoff, help="cutoff radius in Å")
    a("--num-iterations", type=int, default=d.num_iterations, help="message-passing blocks")
    a("--radial-basis", default=d.radial_basis, choices=RADIAL_BASES,
      help="radial functions of the pair basis (basic_*/sinc span [0, cutoff])")
    a("--force-weight", type=float, default=d.force_weight,
      help="loss = MSE(energy) + FORCE_WEIGHT * MSE(force components), in eV² and eV²/Å²")
    a("--num-valid", type=int, default=d.num_valid,
      help="validation frames (the epoch with the lowest MAE_E^2 + FORCE_WEIGHT * MAE_F^2 on "
           "them is saved)")
    a("--num-test", type=int, default=d.num_test, help="held-out test frames")
    a("--seed", type=int, default=d.seed, help="seed for split, initialisation and batches")
    a("--no-plot", dest="plot", action="store_false", help="do not write parity.png")
    a("--devices", type=int, default=d.devices, metavar="D",
      help="data-parallel training over D devices (0 = all visible devices); the batch size "
           "must be a multiple of D. Simulate devices on a CPU with "
           "XLA_FLAGS=--xla_force_host_platform_device_count=D")
    a("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return p


def build_predict_parser() -> argparse.ArgumentParser:
    """The ``predict`` argument parser.

    Returns:
        An ``argparse.ArgumentParser`` with ``--model``, ``--data`` and ``--batch-size``.
    """
    p = argparse.ArgumentParser(
        prog="eqx-mp-train predict",
        description=(
            "Reload a saved model and print its energy and force MAEs (and the mean-energy / "
            "zero-force baseline). Without --data, the run's own test split is evaluated, "
            "reproducing the numbers printed after training."
        ),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--model", default="runs/latest", metavar="DIR",
                   help="run directory (with model.eqx and run.json) or a .eqx file")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="evaluate on every frame of this file instead of the run's test split")
    p.add_argument("--batch-size", type=int, default=50, help="frames per compiled call")
    return p


def _predict_main(argv: list[str]) -> dict[str, float]:
    args = build_predict_parser().parse_args(argv)
    model_path = Path(args.model)
    model = load_model(model_path)
    run_file = (model_path if model_path.is_dir() else model_path.parent) / RUN_FILE
    run = json.loads(run_file.read_text()) if run_file.is_file() else None
    if args.data is not None:
        dataset = load_dataset(args.data)
        label = f"{args.data} ({dataset.num_frames} frames)"
        mean_energy = run["mean_energy"] if run else float(np.mean(dataset.energies))
    else:
        if run is None:
            raise FileNotFoundError(
                f"{run_file} not found: pass --data FILE to evaluate a bare model file"
            )
        dataset = load_dataset(run["data"]).subset(np.asarray(run["splits"]["test"], np.int64))
        label = "test"
        mean_energy = run["mean_energy"]
    res = evaluate(model, dataset, batch_size=args.batch_size)
    metrics = dict(energy_mae=res["energy_mae"], force_mae=res["force_mae"],
                   **baseline_maes(mean_energy, dataset))
    print(format_metrics(metrics, label))
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m eqx_mp.train``, ``eqx-mp-train``).

    Arguments:
        argv: Arguments without the program name (default: ``sys.argv[1:]``). A first
            argument ``predict`` selects evaluation of a saved model; ``train`` (optional)
            selects training.

    Returns:
        The process exit status (0 on success).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        _predict_main(argv[1:])
        return 0
    if argv[:1] == ["train"]:
        argv = argv[1:]
    args = vars(build_parser().parse_args(argv))
    progress = args.pop("progress")
    config = TrainConfig(**args)
    dataset = load_dataset(config.data)  # validated before anything is compiled
    print(
        f"data: {dataset.source} ({dataset.num_frames} frames, {dataset.num_atoms} atoms); "
        f"train/valid/test = {dataset.num_frames - config.num_valid - config.num_test}/"
        f"{config.num_valid}/{config.num_test}; time budget {config.time_budget:g} s",
        flush=True,
    )
    result = train(config, dataset, progress=progress)
    m = result.metrics
    print(f"trained {m['epochs']} epochs ({m['steps']} steps) in {m['train_seconds']:.1f} s")
    print(format_metrics(m, "test"))
    print(f"saved {Path(config.output) / MODEL_FILE}, {RUN_FILE}"
          + (f", {PLOT_FILE}" if config.plot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
