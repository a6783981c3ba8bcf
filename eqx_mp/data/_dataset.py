"""Loading and validating atomistic data sets (positions, atomic numbers, energies, forces)."""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DATASET",
    "REQUIRED_KEYS",
    "Dataset",
    "DatasetError",
    "load_dataset",
    "split_indices",
    "validate_arrays",
]

#: The embedded demo data set (see the package docstring for its provenance).
DEFAULT_DATASET: Path = Path(__file__).resolve().parent / "cupt_icosahedron.npz"

#: Keys a ``.npz`` data set must contain, with the expected layout and units.
REQUIRED_KEYS: dict[str, str] = {
    "positions": "(F, N, 3) float, Å",
    "numbers": "(N,) or (F, N) integer atomic numbers",
    "energies": "(F,) float, eV",
    "forces": "(F, N, 3) float, eV/Å",
}

_NPZ_SUFFIXES = (".npz",)


class DatasetError(ValueError):
    """A data set that cannot be used for training; the message names the key and the problem."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A validated data set of ``F`` frames with ``N`` atoms each (numpy arrays, host memory).

    Arguments:
        positions: ``(F, N, 3)`` float32 Cartesian positions in Å.
        numbers: ``(F, N)`` int32 atomic numbers (1..118).
        energies: ``(F,)`` float64 total potential energies in eV.
        forces: ``(F, N, 3)`` float32 forces in eV/Å.
        source: Where the data came from (a path), for messages.

    Build one with :func:`load_dataset` (which validates); the constructor does not validate.
    """

    positions: np.ndarray
    numbers: np.ndarray
    energies: np.ndarray
    forces: np.ndarray
    source: str = "<arrays>"

    @property
    def num_frames(self) -> int:
        """``F``, the number of frames."""
        return int(self.energies.shape[0])

    @property
    def num_atoms(self) -> int:
        """``N``, the number of atoms per frame."""
        return int(self.positions.shape[1])

    def __len__(self) -> int:
        return self.num_frames

    def subset(self, indices: np.ndarray | Sequence[int]) -> "Dataset":
        """Select frames.

        Arguments:
            indices: ``(K,)`` integer frame indices (array, list or ``range``).

        Returns:
            A :class:`Dataset` with ``K`` frames (same ``source``).
        """
        idx = np.asarray(indices)
        return Dataset(
            positions=self.positions[idx],
            numbers=self.numbers[idx],
            energies=self.energies[idx],
            forces=self.forces[idx],
            source=self.source,
        )


def _fail(source: str, key: str, problem: str) -> DatasetError:
    return DatasetError(f"{source}: key '{key}' {problem}")


def validate_arrays(
    positions: object,
    numbers: object,
    energies: object,
    forces: object,
    *,
    source: str = "<arrays>",
) -> Dataset:
    """Check shapes, dtypes, frame counts and finiteness, and return a :class:`Dataset`.

    Arguments:
        positions: ``(F, N, 3)`` real array of positions (Å).
        numbers: ``(N,)`` (same atoms in every frame) or ``(F, N)`` integer atomic numbers.
        energies: ``(F,)`` real array of total energies (eV).
        forces: ``(F, N, 3)`` real array of forces (eV/Å).
        source: Name of the data source, used in error messages.

    Returns:
        A :class:`Dataset` with positions/forces as float32, energies as float64 and numbers as
        int32 of shape ``(F, N)``.

    Raises:
        DatasetError: naming the key and the expected vs actual shape, dtype or value when the
            data set is empty, has wrong shapes, mismatched frame or atom counts, non-integer or
            out-of-range atomic numbers, or NaN/inf energies, forces or positions.
    """
    arrays = {"positions": positions, "numbers": numbers, "energies": energies, "forces": forces}
    arrs: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        try:
            a = np.asarray(value)
        except Exception as err:  # pragma: no cover - exotic objects
            raise _fail(source, key, f"cannot be converted to an array: {err}") from err
        if a.dtype == object or not (
            np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)
        ):
            raise _fail(source, key, f"must be numeric, got dtype {a.dtype}")
        arrs[key] = a

    pos, num, ene, frc = arrs["positions"], arrs["numbers"], arrs["energies"], arrs["forces"]
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise _fail(source, "positions", f"has shape {pos.shape}, expected (F, N, 3)")
    num_frames, num_atoms = pos.shape[0], pos.shape[1]
    if num_frames == 0:
        raise _fail(source, "positions", f"has 0 frames (shape {pos.shape}); the data set is empty")
    if num_atoms == 0:
        raise _fail(source, "positions", f"has 0 atoms per frame (shape {pos.shape})")
    if ene.ndim == 2 and ene.shape[1] == 1:
        ene = ene[:, 0]
    if ene.ndim != 1:
        raise _fail(source, "energies", f"has shape {ene.shape}, expected (F,) = ({num_frames},)")
    if ene.shape[0] != num_frames:
        raise _fail(
            source,
            "energies",
            f"has {ene.shape[0]} frames but 'positions' has {num_frames} "
            f"(expected shape ({num_frames},), got {ene.shape})",
        )
    if frc.ndim != 3 or frc.shape[-1] != 3:
        raise _fail(
            source, "forces", f"has shape {frc.shape}, expected (F, N, 3) = {pos.shape}"
        )
    if frc.shape[0] != num_frames:
        raise _fail(
            source,
            "forces",
            f"has {frc.shape[0]} frames but 'positions' has {num_frames} "
            f"(expected shape {pos.shape}, got {frc.shape})",
        )
    if frc.shape != pos.shape:
        raise _fail(source, "forces", f"has shape {frc.shape}, expected {pos.shape} like 'positions'")
    if num.ndim == 1:
        if num.shape[0] != num_atoms:
            raise _fail(
                source, "numbers", f"has shape {num.shape}, expected ({num_atoms},) or "
                f"({num_frames}, {num_atoms}) to match 'positions' {pos.shape}"
            )
        num = np.broadcast_to(num, (num_frames, num_atoms))
    elif num.ndim == 2:
        if num.shape != (num_frames, num_atoms):
            raise _fail(
                source, "numbers", f"has shape {num.shape}, expected ({num_atoms},) or "
                f"({num_frames}, {num_atoms}) to match 'positions' {pos.shape}"
            )
    else:
        raise _fail(
            source, "numbers", f"has shape {num.shape}, expected ({num_atoms},) or "
            f"({num_frames}, {num_atoms})"
        )
    if not np.issubdtype(num.dtype, np.integer):
        if np.issubdtype(num.dtype, np.floating) and np.all(np.isfinite(num)) and np.all(
            num == np.round(num)
        ):
            num = num.astype(np.int64)
        else:
            raise _fail(source, "numbers", f"must hold integer atomic numbers, got dtype {num.dtype}")
    bad = (num < 1) | (num > 118)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise _fail(
            source, "numbers", f"must be atomic numbers in 1..118, got {int(num[first])} at "
            f"(frame, atom) = {first}"
        )
    for key, a in (("positions", pos), ("energies", ene), ("forces", frc)):
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise _fail(source, key, f"must be real-valued, got dtype {a.dtype}")
        finite = np.isfinite(a)
        if not finite.all():
            bad_idx = np.argwhere(~finite)
            frame = int(bad_idx[0][0])
            raise _fail(
                source,
                key,
                f"contains {int((~finite).sum())} non-finite value(s) (NaN or inf); first at "
                f"frame {frame}; expected all finite",
            )
    return Dataset(
        positions=np.ascontiguousarray(pos, dtype=np.float32),
        numbers=np.ascontiguousarray(num, dtype=np.int32),
        energies=np.ascontiguousarray(ene, dtype=np.float64),
        forces=np.ascontiguousarray(frc, dtype=np.float32),
        source=source,
    )


def _load_npz(path: Path) -> Dataset:
    source = str(path)
    if path.stat().st_size == 0:
        raise DatasetError(f"{source}: the file is empty (0 bytes); expected a .npz archive")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise DatasetError(
            f"{source}: cannot be read as a .npz archive ({err}); expected keys "
            f"{', '.join(REQUIRED_KEYS)}"
        ) from err
    if not contents:
        raise DatasetError(
            f"{source}: the archive is empty (no arrays); expected keys "
            + ", ".join(f"'{k}' {v}" for k, v in REQUIRED_KEYS.items())
        )
    for key, layout in REQUIRED_KEYS.items():
        if key not in contents:
            raise DatasetError(
                f"{source}: missing key '{key}' (expected {layout}); found keys "
                f"{sorted(contents)}"
            )
    return validate_arrays(
        contents["positions"],
        contents["numbers"],
        contents["energies"],
        contents["forces"],
        source=source,
    )


def _load_ase(path: Path) -> Dataset:
    source = str(path)
    try:
        import ase.io
    except ImportError as err:
        raise ImportError(
            f"reading '{path.name}' needs ASE (pip install ase); alternatively convert it to a "
            f".npz file with keys {', '.join(REQUIRED_KEYS)}"
        ) from err
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:
        raise DatasetError(f"{source}: ASE cannot read this file ({type(err).__name__}: {err})") from err
    if not isinstance(frames, list):
        frames = [frames]
    if len(frames) == 0:
        raise DatasetError(f"{source}: the file contains no frames; the data set is empty")
    sizes = {len(a) for a in frames}
    if len(sizes) != 1:
        raise _fail(
            source, "positions", f"frames have different numbers of atoms {sorted(sizes)}; "
            "expected the same N in every frame"
        )
    pos, num, ene, frc = [], [], [], []
    for i, atoms in enumerate(frames):
        pos.append(atoms.get_positions())
        num.append(atoms.get_atomic_numbers())
        try:
            ene.append(atoms.get_potential_energy())
        except Exception as err:
            raise _fail(source, "energies", f"missing for frame {i}: {err}") from err
        try:
            frc.append(atoms.get_forces())
        except Exception as err:
            raise _fail(source, "forces", f"missing for frame {i}: {err}") from err
    return validate_arrays(np.stack(pos), np.stack(num), np.asarray(ene), np.stack(frc), source=source)


def load_dataset(path: str | os.PathLike[str] | None = None) -> Dataset:
    """Load and validate a data set of energies and forces.

    Arguments:
        path: ``None`` for the embedded Cu/Pt icosahedron data set; a ``.npz`` file with keys
            ``positions`` (F, N, 3) [Å], ``numbers`` (N,) or (F, N), ``energies`` (F,) [eV] and
            ``forces`` (F, N, 3) [eV/Å]; or any file ``ase.io.read`` understands (extxyz,
            ASE trajectory, ...) whose frames carry energies and forces (needs ASE).

    Returns:
        A validated :class:`Dataset` (positions/forces float32, energies float64, numbers int32
        ``(F, N)``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetError: if the file is empty, a key is missing, shapes or frame counts disagree, or
            values are NaN/inf; the message names the key and the expected vs actual value.
        ImportError: if a non-``.npz`` file is given and ASE is not installed.
    """
    p = DEFAULT_DATASET if path is None else Path(path)
    if not p.exists():
        raise FileNotFoundError(f"data set file not found: {p}")
    if p.is_dir():
        raise DatasetError(f"{p}: is a directory, expected a .npz or ASE-readable file")
    if p.suffix.lower() in _NPZ_SUFFIXES:
        return _load_npz(p)
    return _load_ase(p)


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
