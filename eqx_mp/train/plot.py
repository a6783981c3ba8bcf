"""The parity plot of a trained model's test predictions (needs matplotlib, the ``train`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset

__all__ = ["parity_plot"]


def _panels(dataset: Dataset, predictions: dict[str, Any]) -> list[tuple]:
    """``(reference, predicted, name, unit, MAE)`` for each panel."""
    if dataset.is_uniform:
        energy = (dataset.energies, predictions["energies"], "energy", "eV",
                  predictions["energy_mae"])
    else:  # structures of different sizes: compare energies per atom
        energy = (dataset.energies / dataset.atom_counts,
                  predictions["energies"] / dataset.atom_counts, "energy per atom", "eV/atom",
                  predictions["energy_per_atom_mae"])
    panels = [energy, (dataset.atom_forces.ravel(), np.ravel(predictions["forces"]),
                       "force component", "eV/Å", predictions["force_mae"])]
    if "stress_mae" in predictions and dataset.stresses is not None:
        mask = dataset.stress_mask
        panels.append((dataset.stresses[mask].ravel(), predictions["stresses"][mask].ravel(),
                       "stress component", "eV/Å³", predictions["stress_mae"]))
    return panels


def parity_plot(
    dataset: Dataset, predictions: dict[str, Any], path: str | os.PathLike[str]
) -> Path:
    """Write a parity plot (energies, force components and, if present, stresses) as a PNG.

    Arguments:
        dataset: Reference frames.
        predictions: :func:`~eqx_mp.train.evaluate`'s output on ``dataset`` (predictions and
            metrics).
        path: PNG file to write.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(dataset, predictions)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2))
    for ax, (ref, pred, name, unit, mae) in zip(axes, panels):
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.set_title(f"{name}: MAE {1e3 * mae:.3g} m{unit}")
        ax.set_aspect("equal")
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p
