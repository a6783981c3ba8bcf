"""The parity plot of a trained model's test predictions (needs matplotlib, the ``train`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data import Dataset

__all__ = ["parity_plot"]


def parity_plot(dataset: Dataset, predictions: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a two-panel parity plot (energies, force components) as a PNG.

    Arguments:
        dataset: Reference frames.
        predictions: :func:`~eqx_mp.train.evaluate`'s output on ``dataset`` (``energies``,
            ``forces`` and MAEs).
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
