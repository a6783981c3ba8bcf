"""Reading data sets: the embedded ones by name, ``.npz`` files and ASE-readable files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._dataset import Dataset, DatasetError
from ._validate import validate_arrays

__all__ = ["DEFAULT_DATASET", "EMBEDDED_DATASETS", "OPTIONAL_KEYS", "REQUIRED_KEYS", "load_dataset"]

_HERE = Path(__file__).resolve().parent

#: Data sets shipped with the package, by name (see the :mod:`eqx_mp.data` docstring).
EMBEDDED_DATASETS: dict[str, Path] = {
    "cluster": _HERE / "cupt_icosahedron.npz",
    "bulk": _HERE / "cupt_bulk.npz",
    # DFT (PBE) molecules from github.com/davkovacs/BOTNet-datasets (MIT, see dft/README.md);
    # the training files start with the isolated-atom frames (config_type=IsolatedAtom).
    "ethanol": _HERE / "dft" / "ethanol_train.xyz.gz",
    "ethanol-test": _HERE / "dft" / "ethanol_test.xyz.gz",
    "3bpa": _HERE / "dft" / "3bpa_train_300K.xyz.gz",
}

#: The embedded demo data set (the 13-atom Cu/Pt cluster), loaded by ``load_dataset()``.
DEFAULT_DATASET: Path = EMBEDDED_DATASETS["cluster"]

#: Keys a ``.npz`` data set must contain, with the expected layout and units.
REQUIRED_KEYS: dict[str, str] = {
    "positions": "(F, N, 3) float, Å",
    "numbers": "(N,) or (F, N) integer atomic numbers",
    "energies": "(F,) float, eV",
    "forces": "(F, N, 3) float, eV/Å",
}

#: Optional ``.npz`` keys: frames of different sizes (packed) and periodic fields.
OPTIONAL_KEYS: dict[str, str] = {
    "atom_counts": "(F,) int atoms per frame; then positions/forces are (A, 3) and numbers (A,) "
                   "with the frames' atoms concatenated (A = sum of atom_counts)",
    "cells": "(F, 3, 3) or (3, 3) float lattice vectors as rows, Å",
    "pbc": "(F, 3), (3,) or () bool periodic boundary conditions (default: True with cells)",
    "stresses": "(F, 6) float stress, eV/Å³, ASE sign, Voigt order xx yy zz yz xz xy",
    "stress_mask": "(F,) bool frames whose stress is known (default: all)",
}


def _load_npz(path: Path, source: str) -> Dataset:
    if path.stat().st_size == 0:
        raise DatasetError(f"{source}: the file is empty (0 bytes); expected a .npz archive")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise DatasetError(f"{source}: cannot be read as a .npz archive ({err}); expected keys "
                           f"{', '.join(REQUIRED_KEYS)}") from err
    if not contents:
        raise DatasetError(f"{source}: the archive is empty (no arrays); expected keys "
                           + ", ".join(f"'{k}' {v}" for k, v in REQUIRED_KEYS.items()))
    for key, layout in REQUIRED_KEYS.items():
        if key not in contents:
            raise DatasetError(f"{source}: missing key '{key}' (expected {layout}); found keys "
                               f"{sorted(contents)}")
    pos, num, frc = contents["positions"], contents["numbers"], contents["forces"]
    if "atom_counts" in contents:
        counts = np.asarray(contents["atom_counts"]).astype(np.int64)
        total = int(counts.sum())
        for key, a, shape in (("positions", pos, (total, 3)), ("numbers", num, (total,)),
                              ("forces", frc, (total, 3))):
            if a.shape != shape:
                raise DatasetError(f"{source}: key '{key}' has shape {a.shape}, expected {shape} "
                                   f"(the frames' atoms concatenated; sum of 'atom_counts' = {total})")
        if counts.ndim != 1 or (counts < 1).any():
            raise DatasetError(f"{source}: key 'atom_counts' must be (F,) positive integers")
        cut = np.cumsum(counts)[:-1]
        pos, num, frc = (list(np.split(a, cut)) for a in (pos, num, frc))
    return validate_arrays(
        pos, num, contents["energies"], frc,
        **{k: contents.get(k) for k in ("cells", "pbc", "stresses", "stress_mask")},
        source=source,
    )


def _frame_stress(atoms: Any) -> np.ndarray | None:
    try:
        return np.asarray(atoms.get_stress(voigt=True), np.float64)
    except Exception:  # no stress stored for this frame (ASE raises various errors)
        return None


def _forces(atoms: Any) -> np.ndarray:
    """A frame's forces; an isolated atom stored without forces (as E0 files are) has zero."""
    if len(atoms) == 1 and not atoms.pbc.any() and "forces" not in atoms.arrays:
        calc = atoms.calc
        if calc is None or "forces" not in getattr(calc, "results", {}):
            return np.zeros((1, 3))
    return atoms.get_forces()


def _load_ase(path: Path, source: str) -> Dataset:
    try:
        import ase.io
    except ImportError as err:
        raise ImportError(f"reading '{path.name}' needs ASE (pip install ase); alternatively "
                          f"convert it to a .npz file with keys {', '.join(REQUIRED_KEYS)}") from err
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:
        raise DatasetError(f"{source}: ASE cannot read this file ({type(err).__name__}: {err})") from err
    if not isinstance(frames, list):
        frames = [frames]
    if len(frames) == 0:
        raise DatasetError(f"{source}: the file contains no frames; the data set is empty")
    ene, frc = [], []
    for i, atoms in enumerate(frames):
        for key, getter, out in (("energies", atoms.get_potential_energy, ene),
                                 ("forces", lambda a=atoms: _forces(a), frc)):
            try:
                out.append(getter())
            except Exception as err:
                raise DatasetError(f"{source}: key '{key}' missing for frame {i}: {err}") from err
    types = [str(a.info.get("config_type", "")) for a in frames]
    pbc = np.array([a.pbc for a in frames], bool)
    periodic = pbc.any()
    stresses = [_frame_stress(a) if a.pbc.any() else None for a in frames]
    has_stress = np.array([s is not None for s in stresses])
    return validate_arrays(
        [a.get_positions() for a in frames], [a.get_atomic_numbers() for a in frames],
        np.asarray(ene), frc,
        cells=np.array([a.cell.array for a in frames]) if periodic else None,
        pbc=pbc if periodic else None,
        stresses=np.array([np.zeros(6) if s is None else s for s in stresses])
        if has_stress.any() else None,
        stress_mask=has_stress if has_stress.any() else None,
        source=source,
        config_types=types if any(types) else None,
    )


def load_dataset(path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load and validate a data set of energies and forces (and cells and stresses).

    Arguments:
        path: ``None`` or ``"cluster"`` for the embedded 13-atom Cu/Pt cluster set; ``"bulk"``
            for the embedded periodic Cu/Pt fcc set (32-108 atoms, with stress); a ``.npz``
            file with :data:`REQUIRED_KEYS` (and optionally :data:`OPTIONAL_KEYS`); or any file
            ``ase.io.read`` understands (extxyz, ASE trajectory, ...) whose frames carry
            energies and forces, and optionally cell, pbc and stress (needs ASE).

    Returns:
        A validated :class:`Dataset`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetError: if the file is empty, a key is missing, shapes or frame counts disagree, or
            values are NaN/inf; the message names the key and the expected vs actual value.
        ImportError: if a non-``.npz`` file is given and ASE is not installed.

    Example::

        >>> bulk = load_dataset("bulk")
        >>> bulk.frame(0).cell.shape, bulk.stresses.shape[1]
        ((3, 3), 6)

    The DFT sets ``"ethanol"`` (rMD17 ethanol re-computed with PBE: 4 isolated atoms + 1,000
    training frames), ``"ethanol-test"`` (1,000 other frames, for testing only) and ``"3bpa"``
    (4 isolated atoms + 500 frames of 300 K MD) are embedded too (``eqx_mp/data/dft/``).
    """
    name = None if path is None else os.fspath(path)
    p = DEFAULT_DATASET if name is None else EMBEDDED_DATASETS.get(name, Path(name))
    if not p.exists():
        raise FileNotFoundError(f"data set file not found: {p} (embedded data sets: "
                                f"{', '.join(EMBEDDED_DATASETS)})")
    if p.is_dir():
        raise DatasetError(f"{p}: is a directory, expected a .npz or ASE-readable file")
    if p.suffix.lower() == ".npz":
        return _load_npz(p, str(p))
    return _load_ase(p, str(p))
