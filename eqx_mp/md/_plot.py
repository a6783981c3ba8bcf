"""The energy plot of a run (``energies.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_energies"]


def plot_energies(result: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Plot potential, kinetic and total energy per atom against time (needs matplotlib).

    Arguments:
        result: :func:`run_md`'s dict.
        path: The ``.png`` file to write.
        title: Plot title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result["time_ps"]
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    e0 = result["total"][0]
    for key, style in (("potential", "C0"), ("kinetic", "C1"), ("total", "k")):
        axes[0].plot(t, result[key] - (e0 if key != "kinetic" else 0.0), style, label=key)
    axes[0].set_ylabel("energy per atom (eV)\n(potential, total: minus total at t=0)")
    axes[0].legend()
    axes[1].plot(t, 1e3 * (result["total"] - e0), "k")
    axes[1].set_ylabel("total energy drift (meV/atom)")
    axes[1].set_xlabel("time (ps)")
    axes[0].set_title(title or f"{result['num_atoms']} atoms, drift "
                      f"{result['drift_mev_per_atom_ps']:.3g} meV/atom/ps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


