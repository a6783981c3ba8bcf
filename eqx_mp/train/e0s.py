"""Per-element reference energies (E0s) and the energy scale, fitted on the training split.

With ``--e0s average`` the total energies are fitted by least squares as a sum of
one energy per element, ``E ≈ Σ_i E0[Z_i]``, the way MACE's ``E0s="average"`` does; the network
then only learns the remainder. The E0s are fixed during training (the optimiser does not
change them). With ``--e0s isolated`` they are the energies of the isolated-atom frames of the
data (one atom without a periodic cell, or ``config_type=IsolatedAtom``), which MACE's recipe
uses; those frames are then left out of training and of the splits. With ``--e0s none`` they are
zero. ``--e0s auto`` (the default) is ``isolated`` when the data have an isolated-atom frame for
every element of the other frames, and ``average`` otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..models import Potential

__all__ = ["E0_MODES", "ISOLATED_TYPES", "e0_frames", "fit_e0s", "energy_scale", "isolated_e0s",
           "resolve_e0s", "split_isolated", "with_reference_energies"]

#: The E0 modes a model can be given (what ``"auto"`` resolves to).
CONCRETE_E0_MODES = ("average", "isolated", "none")

#: Values of ``TrainConfig.e0s``.
E0_MODES = ("auto", *CONCRETE_E0_MODES)

#: ``config_type`` values that mark an isolated-atom frame (MACE's and the BOTNet data's).
ISOLATED_TYPES = ("IsolatedAtom", "isolated_atom")


def split_isolated(dataset: Dataset) -> tuple[Dataset, Dataset]:
    """Separate the isolated-atom frames from the rest.

    A frame is an isolated atom if it has one atom and no periodic direction, or its
    ``config_type`` is one of :data:`ISOLATED_TYPES`.

    Arguments:
        dataset: All frames.

    Returns:
        ``(isolated, rest)``, two data sets (either may be empty).
    """
    mask = (dataset.atom_counts == 1) & ~dataset.is_periodic
    if dataset.config_types is not None:
        mask |= np.isin(dataset.config_types, ISOLATED_TYPES)
    return dataset.subset(mask), dataset.subset(~mask)


def e0_frames(mode: str, dataset: Dataset) -> tuple[str, Dataset | None, Dataset]:
    """The E0 mode a run uses, and the frames it takes the E0s from and trains on.

    ``"auto"`` is ``"isolated"`` when ``dataset`` has isolated-atom frames (:func:`split_isolated`)
    for every element of its other frames (MACE's recipe), and ``"average"`` otherwise (e.g. no
    isolated atoms, or not for every element). With ``"isolated"`` the isolated atoms give the
    E0s and are left out of training and of the splits.

    Arguments:
        mode: One of :data:`E0_MODES`.
        dataset: All frames of the run's data.

    Returns:
        ``(resolved mode, isolated, rest)``: the mode (``"average"``, ``"isolated"`` or
        ``"none"``); the isolated-atom frames when it is ``"isolated"``, else ``None``; and the
        frames the run splits into training, validation and test (``dataset`` itself unless
        the mode is ``"isolated"``).

    Raises:
        ValueError: for an unknown ``mode``.
    """
    if mode not in E0_MODES:
        raise ValueError(f"e0s must be one of {E0_MODES}, got {mode!r}")
    if mode not in ("auto", "isolated"):
        return mode, None, dataset
    isolated, rest = split_isolated(dataset)
    if mode == "auto":
        covered = (isolated.num_frames > 0 and rest.num_frames > 0
                   and not (isolated.atom_counts != 1).any()
                   and set(np.unique(rest.atom_numbers).tolist())
                   <= set(isolated.atom_numbers.tolist()))
        if not covered:
            return "average", None, dataset
    return "isolated", isolated, rest


def resolve_e0s(mode: str, dataset: Dataset) -> str:
    """The E0 mode a run uses: ``mode``, with ``"auto"`` decided by the data (:func:`e0_frames`).

    Arguments:
        mode: One of :data:`E0_MODES`.
        dataset: All frames of the run's data.

    Returns:
        ``"average"``, ``"isolated"`` or ``"none"``.

    Raises:
        ValueError: for an unknown ``mode``.
    """
    return e0_frames(mode, dataset)[0]


def isolated_e0s(isolated: Dataset, elements: Any, max_atomic_number: int) -> np.ndarray:
    """Per-element energies from isolated-atom frames.

    Arguments:
        isolated: Frames of one atom each (from :func:`split_isolated`).
        elements: Atomic numbers that need an energy (those of the training frames).
        max_atomic_number: Size of the output minus one.

    Returns:
        ``(max_atomic_number + 1,)`` float64 energies in eV indexed by atomic number.

    Raises:
        ValueError: if an element of ``elements`` has no isolated-atom frame, or a frame has
            more than one atom.
    """
    if (isolated.atom_counts != 1).any():
        raise ValueError("isolated-atom frames (config_type IsolatedAtom) must have one atom, got "
                         f"{sorted(set(isolated.atom_counts.tolist()))}")
    e0s = np.zeros(max_atomic_number + 1, np.float64)
    known = dict(zip(isolated.atom_numbers.tolist(), isolated.energies.tolist()))
    missing = sorted(set(int(z) for z in elements) - set(known))
    if missing:
        raise ValueError(f"--e0s isolated: no isolated-atom frame for atomic number(s) {missing} "
                         f"(found {sorted(known)}); add single-atom frames or use --e0s average")
    for z, e in known.items():
        if z <= max_atomic_number:
            e0s[z] = e
    return e0s


def _least_squares(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(elements (S,), counts (F, S), E0 of each element (S,))``."""
    elements, counts = dataset.element_counts()
    coef = np.linalg.lstsq(counts.astype(np.float64), dataset.energies, rcond=None)[0]
    return elements, counts, coef


def fit_e0s(dataset: Dataset, max_atomic_number: int) -> np.ndarray:
    """Least-squares per-element energies: ``argmin Σ_f (E_f - Σ_i E0[Z_fi])²``.

    If the compositions do not determine every element's energy (e.g. every frame has the same
    composition), the minimum-norm solution is returned, as ``numpy.linalg.lstsq`` does.

    Arguments:
        dataset: The training frames (energies in eV; frames may differ in size).
        max_atomic_number: Size of the output minus one.

    Returns:
        ``(max_atomic_number + 1,)`` float64 energies in eV, indexed by atomic number (zero for
        elements not in the data).
    """
    elements, _, coef = _least_squares(dataset)
    e0s = np.zeros(max_atomic_number + 1, np.float64)
    e0s[elements] = coef
    return e0s


def energy_scale(dataset: Dataset) -> float:
    """The scale of the atomic energies the network outputs (eV).

    The spread per atom of what the E0 fit leaves unexplained, but at least the spread of the
    force components times 1 Å.

    Arguments:
        dataset: The training frames.

    Returns:
        The scale in eV.
    """
    _, counts, coef = _least_squares(dataset)
    residual = dataset.energies - counts @ coef
    atoms = float(np.mean(dataset.atom_counts))
    return max(float(np.std(residual)) / math.sqrt(atoms), float(np.std(dataset.atom_forces)))


def with_reference_energies(model: Potential, dataset: Dataset, mode: str,
                            isolated: Dataset | None = None) -> Potential:
    """Set a new model's per-element energies and energy scale from the training frames.

    Arguments:
        model: The freshly initialised potential.
        dataset: The training frames.
        mode: ``"average"`` (least-squares E0s, :func:`fit_e0s`), ``"isolated"``
            (:func:`isolated_e0s` of ``isolated``, plus the mean binding energy per atom of the
            training frames, one shift for all elements, as MACE's scale-shift) or ``"none"``.
        isolated: The isolated-atom frames (``mode="isolated"``).

    Returns:
        The model with ``element_energies`` and ``energy_scale`` set (in its float dtype).

    Raises:
        ValueError: for an unknown ``mode``.
    """
    if mode == "auto":
        raise ValueError("e0s='auto' depends on the data: resolve it first with "
                         "resolve_e0s('auto', dataset)")
    if mode not in CONCRETE_E0_MODES:
        raise ValueError(f"e0s must be one of {CONCRETE_E0_MODES}, got {mode!r}")
    dtype = model.element_energies.dtype
    e0s = np.zeros(model.element_energies.shape, np.float64)
    if mode == "average":
        e0s = fit_e0s(dataset, model.max_atomic_number)
    elif mode == "isolated":
        if isolated is None:
            raise ValueError("e0s='isolated' needs the isolated-atom frames")
        e0s = isolated_e0s(isolated, np.unique(dataset.atom_numbers), model.max_atomic_number)
        # Plus the mean binding energy per atom (MACE's scale-shift): the network starts from
        # the right energy level and learns the variations, not a large constant.
        elements, counts = dataset.element_counts()
        shift = float(np.mean((dataset.energies - counts @ e0s[elements]) / dataset.atom_counts))
        e0s[elements] += shift
    model = eqx.tree_at(lambda m: m.element_energies, model, jnp.asarray(e0s, dtype))
    return eqx.tree_at(lambda m: m.energy_scale, model, jnp.asarray(energy_scale(dataset), dtype))
