"""The :class:`Dataset` container: frames of any atom count, optionally periodic with stress."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Dataset", "DatasetError", "Frame", "split_indices"]


class DatasetError(ValueError):
    """A data set that cannot be used for training; the message names the key and the problem."""


class Frame(NamedTuple):
    """One structure of a :class:`Dataset` (numpy arrays, ``n`` atoms).

    Attributes:
        positions: ``(n, 3)`` float32 positions, Å.
        numbers: ``(n,)`` int32 atomic numbers.
        energy: Total energy, eV.
        forces: ``(n, 3)`` float32 forces, eV/Å.
        cell: ``(3, 3)`` float64 lattice vectors as rows (Å), or ``None``.
        pbc: ``(3,)`` bool periodic boundary conditions (all ``False`` without a cell).
        stress: ``(6,)`` float64 stress in eV/Å³ (ASE sign, Voigt order xx yy zz yz xz xy), or
            ``None`` if the frame has none.
    """

    positions: np.ndarray
    numbers: np.ndarray
    energy: float
    forces: np.ndarray
    cell: np.ndarray | None
    pbc: np.ndarray
    stress: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A validated data set of ``F`` frames with ``n_f`` atoms each (numpy, host memory).

    Per-atom arrays of all frames are concatenated (``A = sum(n_f)`` atoms; frame ``f`` owns
    rows ``offsets[f]:offsets[f + 1]``), so frames may differ in size. For data sets whose frames
    all have ``N`` atoms (such as the embedded cluster set) :attr:`positions`,
    :attr:`numbers` and :attr:`forces` give the familiar ``(F, N, ...)`` views.

    Arguments:
        energies: ``(F,)`` float64 total energies, eV.
        atom_counts: ``(F,)`` int64 atoms per frame ``n_f`` (``>= 1``).
        atom_positions: ``(A, 3)`` float32 positions, Å.
        atom_numbers: ``(A,)`` int32 atomic numbers (1..118).
        atom_forces: ``(A, 3)`` float32 forces, eV/Å.
        cells: ``(F, 3, 3)`` float64 lattice vectors as rows (Å, ASE convention), or ``None``
            if no frame is periodic (then ``pbc`` is ``None`` too).
        pbc: ``(F, 3)`` bool periodic boundary conditions, or ``None``.
        stresses: ``(F, 6)`` float64 stress, eV/Å³, ASE sign (``(1/V) dE/dstrain``, negative
            under compression) and Voigt order ``xx yy zz yz xz xy``; ``None`` if no frame has
            one. Zeros where ``stress_mask`` is ``False``.
        stress_mask: ``(F,)`` bool, which frames have a reference stress (``None`` with
            ``stresses``).
        source: Where the data came from (a path or name), for messages.
        config_types: ``(F,)`` str, each frame's ``config_type`` (extxyz info key; ``""`` if
            it has none), or ``None`` if no frame has one.

    Build one with :func:`validate_arrays` or :func:`load_dataset` (both validate); the
    constructor does not validate.
    """

    energies: np.ndarray
    atom_counts: np.ndarray
    atom_positions: np.ndarray
    atom_numbers: np.ndarray
    atom_forces: np.ndarray
    cells: np.ndarray | None = None
    pbc: np.ndarray | None = None
    stresses: np.ndarray | None = None
    stress_mask: np.ndarray | None = None
    source: str = "<arrays>"
    config_types: np.ndarray | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def num_frames(self) -> int:
        """``F``, the number of frames."""
        return int(self.energies.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def offsets(self) -> np.ndarray:
        """``(F + 1,)`` int64 start of each frame's atoms in the ``atom_*`` arrays, then ``A``."""
        return np.concatenate([[0], np.cumsum(self.atom_counts)]).astype(np.int64)

    @property
    def is_uniform(self) -> bool:
        """Whether every frame has the same number of atoms."""
        return bool(np.all(self.atom_counts == self.atom_counts[0]))

    @property
    def num_atoms(self) -> int:
        """``N``, the number of atoms per frame (uniform data sets only; see ``atom_counts``)."""
        self._require_uniform("num_atoms")
        return int(self.atom_counts[0])

    @property
    def is_periodic(self) -> np.ndarray:
        """``(F,)`` bool, frames with at least one periodic direction."""
        if self.pbc is None:
            return np.zeros(self.num_frames, bool)
        return np.asarray(self.pbc.any(axis=1))

    # ------------------------------------------------------------------ uniform views
    def _require_uniform(self, name: str) -> None:
        if not self.is_uniform:
            raise DatasetError(
                f"{self.source}: '{name}' needs frames of equal size, but they have "
                f"{int(self.atom_counts.min())}..{int(self.atom_counts.max())} atoms; use "
                f"dataset.frame(i) or the packed atom_* arrays with dataset.offsets"
            )

    def _view(self, name: str, packed: np.ndarray) -> np.ndarray:
        self._require_uniform(name)
        return packed.reshape((self.num_frames, int(self.atom_counts[0])) + packed.shape[1:])

    @property
    def positions(self) -> np.ndarray:
        """``(F, N, 3)`` float32 positions, Å (uniform data sets; a view of ``atom_positions``)."""
        return self._view("positions", self.atom_positions)

    @property
    def numbers(self) -> np.ndarray:
        """``(F, N)`` int32 atomic numbers (uniform data sets)."""
        return self._view("numbers", self.atom_numbers)

    @property
    def forces(self) -> np.ndarray:
        """``(F, N, 3)`` float32 forces, eV/Å (uniform data sets)."""
        return self._view("forces", self.atom_forces)

    # ------------------------------------------------------------------ frames
    def frame(self, index: int) -> Frame:
        """One frame.

        Arguments:
            index: Frame index in ``0..F-1`` (negative counts from the end).

        Returns:
            A :class:`Frame` (arrays are views, not copies).
        """
        f = range(self.num_frames)[index]
        start, stop = int(self.offsets[f]), int(self.offsets[f + 1])
        stress = None
        if self.stresses is not None and self.stress_mask is not None and self.stress_mask[f]:
            stress = self.stresses[f]
        return Frame(
            positions=self.atom_positions[start:stop],
            numbers=self.atom_numbers[start:stop],
            energy=float(self.energies[f]),
            forces=self.atom_forces[start:stop],
            cell=None if self.cells is None or self.pbc is None or not self.pbc[f].any()
            else self.cells[f],
            pbc=np.zeros(3, bool) if self.pbc is None else self.pbc[f],
            stress=stress,
        )

    def to_atoms(self, index: int) -> Any:
        """One frame as an ``ase.Atoms`` with a single-point calculator (needs ASE).

        Arguments:
            index: Frame index.

        Returns:
            ``ase.Atoms`` with cell, pbc and the reference energy, forces (and stress).
        """
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        fr = self.frame(index)
        atoms = Atoms(numbers=fr.numbers, positions=fr.positions,
                      cell=np.zeros((3, 3)) if fr.cell is None else fr.cell, pbc=fr.pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=fr.energy, forces=fr.forces,
                                           **({} if fr.stress is None else {"stress": fr.stress}))
        return atoms

    def subset(self, indices: np.ndarray | Sequence[int]) -> "Dataset":
        """Select frames.

        Arguments:
            indices: ``(K,)`` integer frame indices (array, list or ``range``), or an ``(F,)``
                boolean mask.

        Returns:
            A :class:`Dataset` with those ``K`` frames in that order (same ``source``).
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self.num_frames,):
                raise IndexError(f"a boolean mask must have shape ({self.num_frames},), got {idx.shape}")
            idx = np.nonzero(idx)[0]
        idx = idx.astype(np.int64).reshape(-1)
        counts = self.atom_counts[idx]
        first = np.cumsum(counts) - counts
        atoms = np.repeat(self.offsets[:-1][idx] - first, counts) + np.arange(int(counts.sum()))

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return Dataset(
            energies=self.energies[idx],
            atom_counts=self.atom_counts[idx],
            atom_positions=self.atom_positions[atoms],
            atom_numbers=self.atom_numbers[atoms],
            atom_forces=self.atom_forces[atoms],
            cells=pick(self.cells),
            pbc=pick(self.pbc),
            stresses=pick(self.stresses),
            stress_mask=pick(self.stress_mask),
            source=self.source,
            config_types=pick(self.config_types),
        )

    def element_counts(self, elements: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """How many atoms of each element every frame has (for per-element energy fits).

        Arguments:
            elements: Atomic numbers to count (default: those present, sorted).

        Returns:
            ``(elements, counts)``: ``(Z,)`` int atomic numbers and ``(F, Z)`` int64 counts.
        """
        el = np.unique(self.atom_numbers) if elements is None else np.asarray(elements)
        frame_of_atom = np.repeat(np.arange(self.num_frames), self.atom_counts)
        counts = np.zeros((self.num_frames, len(el)), np.int64)
        for k, z in enumerate(el):
            counts[:, k] = np.bincount(frame_of_atom[self.atom_numbers == z],
                                       minlength=self.num_frames)
        return el, counts


def split_indices(
    num_frames: int, *, num_valid: int, num_test: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random disjoint train/validation/test frame indices.

    Arguments:
        num_frames: ``F``, the number of frames.
        num_valid: Number of validation frames.
        num_test: Number of test frames.
        seed: Seed of the permutation (numpy ``default_rng``).

    Returns:
        ``(train, valid, test)`` sorted int64 index arrays of sizes
        ``(F - num_valid - num_test,)``, ``(num_valid,)``, ``(num_test,)``.

    Raises:
        ValueError: if fewer than one training frame would remain or a size is negative.
    """
    if num_valid < 0 or num_test < 0:
        raise ValueError(f"num_valid and num_test must be >= 0, got {num_valid} and {num_test}")
    num_train = num_frames - num_valid - num_test
    if num_train < 1:
        raise ValueError(
            f"the data set has {num_frames} frames, too few for {num_valid} validation + "
            f"{num_test} test frames and at least 1 training frame"
        )
    perm = np.random.default_rng(seed).permutation(num_frames)
    return (
        np.sort(perm[:num_train]),
        np.sort(perm[num_train : num_train + num_valid]),
        np.sort(perm[num_train + num_valid :]),
    )
