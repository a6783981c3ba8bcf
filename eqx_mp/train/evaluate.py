"""Predictions and error metrics of a potential on a data set, and the trivial baselines."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

from ..batching import Graph, GraphBatch
from ..data import Dataset
from ..models import BatchPrediction, Potential
from .batches import Layout, dataset_graphs, layout_for, make_batches, note_compilation

__all__ = [
    "Predictions",
    "predict",
    "evaluate",
    "error_metrics",
    "baseline_predictor",
    "baseline_metrics",
    "format_config_types",
    "format_metrics",
    "metrics_by_config_type",
]

@eqx.filter_jit
def _predict_batch(model: Potential, batch: GraphBatch, stress: bool) -> BatchPrediction:
    note_compilation("predict")
    return model.batch_predict(batch, stress=stress)


class Predictions(NamedTuple):
    """What :func:`predict` returns for ``F`` frames (``A`` atoms in all).

    Attributes:
        energies: ``(F,)`` float64 total energies, eV.
        forces: ``(F, N, 3)`` forces in eV/Å if all frames have ``N`` atoms, else ``(A, 3)`` in
            the order of ``Dataset.atom_forces``.
        stresses: ``(F, 6)`` stresses in eV/Å³ (zero for non-periodic frames), or ``None`` if the
            data set has no stresses.
    """

    energies: np.ndarray
    forces: np.ndarray
    stresses: np.ndarray | None


def predict(
    model: Potential,
    dataset: Dataset,
    *,
    batch_size: int = 50,
    graphs: list[Graph] | None = None,
    layout: Layout | None = None,
) -> Predictions:
    """Energies, forces (and stresses) of every frame, in padded batches of one shape.

    Arguments:
        model: The potential.
        dataset: ``F`` frames of any size, isolated or periodic.
        batch_size: Frames per compiled call.
        graphs: The frames as graphs (default: built with the model's cutoff).
        layout: The batch capacities (default: :func:`~eqx_mp.train.batches.layout_for` of
            ``graphs`` and ``batch_size``); pass one layout for several data sets to compile once.

    Returns:
        :class:`Predictions` ``(energies, forces, stresses)``.

    Raises:
        ValueError: if the data set has elements the model does not know.
    """
    model.check_numbers(dataset.atom_numbers)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    graphs = dataset_graphs(dataset, model.cutoff) if graphs is None else graphs
    layout = layout_for(graphs, batch_size) if layout is None else layout
    stress = dataset.stresses is not None
    energies, forces, stresses = [], [], []
    dtype = model.energy_scale.dtype
    for batch in make_batches(graphs, range(len(graphs)), layout, dtype):
        pred = jax.device_get(_predict_batch(model, batch, stress))
        energies.append(pred.energies[batch.graph_mask])
        forces.append(pred.forces[batch.node_mask])
        if stress:
            stresses.append(pred.stresses[batch.graph_mask])
    f = np.concatenate(forces)
    if dataset.is_uniform:
        f = f.reshape(dataset.num_frames, -1, 3)
    return Predictions(np.concatenate(energies).astype(np.float64), f,
                       np.concatenate(stresses).astype(np.float64) if stress else None)


def _mae_rmse(errors: np.ndarray) -> tuple[float, float]:
    return float(np.mean(np.abs(errors))), math.sqrt(float(np.mean(np.square(errors))))


def error_metrics(
    dataset: Dataset, energies: Any, forces: Any, stresses: Any = None
) -> dict[str, float]:
    """MAE and RMSE of predicted energies (per structure and per atom), forces and stresses.

    Arguments:
        dataset: ``F`` reference frames (``A`` atoms in all).
        energies: ``(F,)`` predicted energies in eV.
        forces: ``(A, 3)`` or ``(F, N, 3)`` predicted forces in eV/Å.
        stresses: ``(F, 6)`` predicted stresses in eV/Å³, or ``None``.

    Returns:
        ``energy_mae``, ``energy_rmse`` (eV), ``energy_per_atom_mae``,
        ``energy_per_atom_rmse`` (eV/atom), ``force_mae``, ``force_rmse`` (eV/Å, over Cartesian
        components), ``force_rel_rmse`` (force RMSE over the RMS of the reference forces, %),
        and ``stress_mae``, ``stress_rmse`` (eV/Å³, over the Voigt components of the frames with
        a reference stress) when both the prediction and the data have stresses.
    """
    de = np.asarray(energies, np.float64) - dataset.energies
    ref_f = dataset.atom_forces.astype(np.float64)
    df = np.asarray(forces, np.float64).reshape(-1, 3) - ref_f
    force_rms = math.sqrt(float(np.mean(ref_f**2)))
    m: dict[str, float] = dict(zip(("energy_mae", "energy_rmse"), _mae_rmse(de)))
    m.update(zip(("energy_per_atom_mae", "energy_per_atom_rmse"),
                 _mae_rmse(de / dataset.atom_counts)))
    m.update(zip(("force_mae", "force_rmse"), _mae_rmse(df)))
    m["force_rel_rmse"] = 100 * m["force_rmse"] / force_rms if force_rms > 0 else math.nan
    if (stresses is not None and dataset.stresses is not None and dataset.stress_mask is not None
            and dataset.stress_mask.any()):
        ds = np.asarray(stresses, np.float64) - dataset.stresses
        m.update(zip(("stress_mae", "stress_rmse"), _mae_rmse(ds[dataset.stress_mask])))
    return m


def evaluate(
    model: Potential,
    dataset: Dataset,
    *,
    batch_size: int = 50,
    graphs: list[Graph] | None = None,
    layout: Layout | None = None,
) -> dict[str, Any]:
    """Error metrics of a potential on a data set, and its predictions.

    Arguments:
        model: The potential.
        dataset: ``F`` frames with reference energies and forces (and maybe stresses).
        batch_size: Frames per compiled call.
        graphs: The frames as graphs (default: built with the model's cutoff).
        layout: The batch capacities (see :func:`predict`).

    Returns:
        The metrics of :func:`error_metrics` (``energy_mae``, ``force_rmse``, ...) and the
        predictions ``energies``, ``forces`` and ``stresses`` (see :class:`Predictions`).
    """
    pred = predict(model, dataset, batch_size=batch_size, graphs=graphs, layout=layout)
    return dict(**error_metrics(dataset, *pred), **pred._asdict())


def metrics_by_config_type(dataset: Dataset, predictions: dict[str, Any]) -> dict[str, dict]:
    """:func:`error_metrics` of each ``config_type`` of the frames.

    Arguments:
        dataset: ``F`` frames; their ``config_types`` label them.
        predictions: ``energies`` ``(F,)``, ``forces`` and maybe ``stresses`` (as :func:`evaluate`
            returns them).

    Returns:
        ``{config_type: metrics}`` (with ``frames``, the number of frames), sorted by name;
        empty if the frames have no ``config_type`` or all have the same one.
    """
    types = dataset.config_types
    if types is None or len(set(types.tolist())) < 2:
        return {}
    energies = np.asarray(predictions["energies"])
    forces = np.asarray(predictions["forces"]).reshape(-1, 3)
    stresses = predictions.get("stresses")
    out = {}
    for name in sorted(set(types.tolist())):
        frames = types == name
        atoms = np.repeat(frames, dataset.atom_counts)
        m = error_metrics(dataset.subset(frames), energies[frames], forces[atoms],
                          None if stresses is None else np.asarray(stresses)[frames])
        out[name or "(none)"] = dict(frames=int(frames.sum()), **m)
    return out


def format_config_types(by_type: dict[str, dict]) -> str:
    """One line per ``config_type``: energy and force MAE and RMSE.

    Arguments:
        by_type: From :func:`metrics_by_config_type`.

    Returns:
        The lines (empty string if there are none).
    """
    return "\n".join(
        f"  {name} ({m['frames']} frames): energy MAE {1e3 * m['energy_mae']:.3f} meV, RMSE "
        f"{1e3 * m['energy_rmse']:.3f} meV; force MAE {1e3 * m['force_mae']:.3f} meV/Å, RMSE "
        f"{1e3 * m['force_rmse']:.3f} meV/Å" for name, m in by_type.items())


def baseline_predictor(train_set: Dataset) -> dict[str, Any]:
    """The trivial predictor's parameters, from the training frames.

    Arguments:
        train_set: The training frames.

    Returns:
        ``{"energy_per_atom": eV, "stress": [6 floats] | None}``: the mean training energy per
        atom (a frame's prediction is this times its number of atoms; for frames of one size, the
        mean energy) and the mean training stress (eV/Å³, ``None`` without stresses). Forces
        are predicted as zero.
    """
    stress = None
    if (train_set.stresses is not None and train_set.stress_mask is not None
            and train_set.stress_mask.any()):
        stress = train_set.stresses[train_set.stress_mask].mean(0).tolist()
    return dict(energy_per_atom=float(np.mean(train_set.energies / train_set.atom_counts)),
                stress=stress)


def baseline_metrics(predictor: dict[str, Any], dataset: Dataset) -> dict[str, float]:
    """The metrics of the trivial predictor, with keys prefixed ``baseline_``.

    Arguments:
        predictor: From :func:`baseline_predictor`.
        dataset: Frames to evaluate on.

    Returns:
        ``baseline_energy_mae``, ``baseline_force_mae``, ... (the keys of :func:`error_metrics`).
    """
    energies = predictor["energy_per_atom"] * dataset.atom_counts
    stresses = None
    if predictor.get("stress") is not None:
        stresses = np.broadcast_to(np.asarray(predictor["stress"]), (dataset.num_frames, 6))
    metrics = error_metrics(dataset, energies, np.zeros_like(dataset.atom_forces), stresses)
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
    ("stress MAE", "stress_mae", 1e3, "meV/Å³"),
    ("stress RMSE", "stress_rmse", 1e3, "meV/Å³"),
)


def format_metrics(metrics: dict[str, Any], label: str = "test") -> str:
    """The result lines printed after training and by ``predict``: model vs trivial baseline.

    Arguments:
        metrics: :func:`error_metrics` keys and the same keys prefixed ``baseline_``.
        label: Which split the numbers are for.

    Returns:
        One line per metric present (MAEs and RMSEs in meV, meV/atom, meV/Å, meV/Å³; relative in
        %), after a line that says what the baseline is.
    """
    lines = [f"{label} errors vs the trivial baseline (mean training energy per atom, zero forces"
             + (", mean stress):" if "stress_mae" in metrics else "):")]
    for name, key, factor, unit in _ROWS:
        if key in metrics:
            lines.append(f"{label} {name}: {factor * metrics[key]:.3f} {unit}  "
                         f"(baseline {factor * metrics['baseline_' + key]:.3f} {unit})")
    return "\n".join(lines)
