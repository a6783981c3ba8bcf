"""Predictions and error metrics of a potential on a data set, and the trivial baselines."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..models import Potential, batched_energy_and_forces

__all__ = [
    "predict",
    "evaluate",
    "error_metrics",
    "baseline_predictor",
    "baseline_metrics",
    "format_metrics",
]


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
        ``(energies, forces)``: float64 ``(F,)`` in eV and ``(F, N, 3)`` in eV/Å (the model's
        float dtype).

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
    dtype = model.energy_scale.dtype
    num = dataset.num_frames
    bs = min(batch_size, num)
    e_out, f_out = [], []
    for start in range(0, num, bs):
        idx = np.arange(start, start + bs)
        valid = idx < num
        idx = np.where(valid, idx, num - 1)
        e, f = _predict_batch(model, jnp.asarray(dataset.positions[idx], dtype),
                              jnp.asarray(dataset.numbers[idx]))
        e_out.append(np.asarray(e)[valid])
        f_out.append(np.asarray(f)[valid])
    return np.concatenate(e_out).astype(np.float64), np.concatenate(f_out)


def error_metrics(dataset: Dataset, energies: np.ndarray, forces: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of predicted energies (per structure and per atom) and forces.

    Arguments:
        dataset: ``F`` reference frames.
        energies: ``(F,)`` predicted energies in eV.
        forces: ``(F, N, 3)`` predicted forces in eV/Å.

    Returns:
        ``energy_mae``, ``energy_rmse`` (eV), ``energy_per_atom_mae``,
        ``energy_per_atom_rmse`` (eV/atom), ``force_mae``, ``force_rmse`` (eV/Å, over Cartesian
        components) and ``force_rel_rmse`` (force RMSE over the RMS of the reference forces, %).
    """
    de = np.asarray(energies, np.float64) - dataset.energies
    de_atom = de / dataset.num_atoms
    df = np.asarray(forces, np.float64) - dataset.forces
    force_rms = math.sqrt(float(np.mean(np.square(dataset.forces.astype(np.float64)))))
    force_rmse = math.sqrt(float(np.mean(df**2)))
    return dict(
        energy_mae=float(np.mean(np.abs(de))),
        energy_rmse=math.sqrt(float(np.mean(de**2))),
        energy_per_atom_mae=float(np.mean(np.abs(de_atom))),
        energy_per_atom_rmse=math.sqrt(float(np.mean(de_atom**2))),
        force_mae=float(np.mean(np.abs(df))),
        force_rmse=force_rmse,
        force_rel_rmse=100 * force_rmse / force_rms if force_rms > 0 else math.nan,
    )


def evaluate(model: Potential, dataset: Dataset, *, batch_size: int = 50) -> dict[str, Any]:
    """Error metrics of a potential on a data set, and its predictions.

    Arguments:
        model: The potential.
        dataset: ``F`` frames with reference energies and forces.
        batch_size: Frames per compiled call.

    Returns:
        The metrics of :func:`error_metrics` (``energy_mae``, ``force_rmse``, ...) and the
        predictions ``energies`` ``(F,)`` (eV) and ``forces`` ``(F, N, 3)`` (eV/Å).
    """
    e, f = predict(model, dataset, batch_size=batch_size)
    return dict(**error_metrics(dataset, e, f), energies=e, forces=f)


def baseline_predictor(train_set: Dataset) -> dict[str, float]:
    """The trivial predictor's parameters, from the training frames.

    Arguments:
        train_set: The training frames.

    Returns:
        ``{"energy_per_atom": eV}``: the mean training energy per atom. The predictor gives a
        frame this times its number of atoms (for frames of one size: the mean energy) and zero
        forces.
    """
    return dict(energy_per_atom=float(np.mean(train_set.energies / train_set.num_atoms)))


def baseline_metrics(predictor: dict[str, float], dataset: Dataset) -> dict[str, float]:
    """The metrics of the trivial predictor, with keys prefixed ``baseline_``.

    Arguments:
        predictor: From :func:`baseline_predictor`.
        dataset: Frames to evaluate on.

    Returns:
        ``baseline_energy_mae``, ``baseline_force_mae``, ... (the keys of :func:`error_metrics`).
    """
    energies = np.full(dataset.num_frames, predictor["energy_per_atom"] * dataset.num_atoms)
    metrics = error_metrics(dataset, energies, np.zeros_like(dataset.forces))
    return {f"baseline_{k}": v for k, v in metrics.items()}


#: Rows of :func:`format_metrics`: label, metric key, factor, unit.
_ROWS = (
    ("energy MAE", "energy_mae", 1e3, "meV"),
    ("energy RMSE", "energy_rmse", 1e3, "meV"),
    ("energy per atom MAE", "energy_per_atom_mae", 1e3, "meV/atom"),
    ("energy per atom RMSE", "energy_per_atom_rmse", 1e3, "meV/atom"),
    ("force MAE", "force_mae", 1e3, "meV/Å"),
    ("force RMSE", "force_rmse", 1e3, "meV/Å"),
    ("force relative RMSE", "force_rel_rmse", 1, "%"),
)


def format_metrics(metrics: dict[str, Any], label: str = "test") -> str:
    """The result lines printed after training and by ``predict``: model vs trivial baseline.

    Arguments:
        metrics: :func:`error_metrics` keys and the same keys prefixed ``baseline_``.
        label: Which split the numbers are for.

    Returns:
        One line per metric present (MAEs and RMSEs in meV, meV/atom, meV/Å; relative in %),
        after a line that says what the baseline is.
    """
    lines = [f"{label} errors vs the trivial baseline (mean training energy per atom, zero forces):"]
    for name, key, factor, unit in _ROWS:
        if key in metrics:
            lines.append(f"{label} {name}: {factor * metrics[key]:.3f} {unit}  "
                         f"(baseline {factor * metrics['baseline_' + key]:.3f} {unit})")
    return "\n".join(lines)
