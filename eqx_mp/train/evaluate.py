"""Predictions and error metrics of a potential on a data set, and the trivial baselines."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..models import Potential, batched_energy_and_forces

__all__ = ["predict", "evaluate", "baseline_maes", "format_metrics"]


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


def evaluate(model: Potential, dataset: Dataset, *, batch_size: int = 50) -> dict[str, Any]:
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


def baseline_maes(mean_energy: float | int, dataset: Dataset) -> dict[str, float]:
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
