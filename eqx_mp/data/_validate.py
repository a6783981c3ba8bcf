"""Validation of raw arrays into a :class:`~eqx_mp.data.Dataset` (one place for every check)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..neighbours import MIN_VOLUME
from ._dataset import Dataset, DatasetError

__all__ = ["validate_arrays", "voigt"]


def _fail(source: str, key: str, problem: str) -> DatasetError:
    return DatasetError(f"{source}: key '{key}' {problem}")


def _numeric(source: str, key: str, value: Any) -> np.ndarray:
    try:
        a = np.asarray(value)
    except Exception as err:  # pragma: no cover - exotic objects
        raise _fail(source, key, f"cannot be converted to an array: {err}") from err
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)):
        raise _fail(source, key, f"must be numeric, got dtype {a.dtype}")
    return a


#: Row and column of each Voigt component ``xx yy zz yz xz xy`` (ASE's order).
_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])


def voigt(tensor: Any) -> Any:
    """Voigt vectors of (symmetrised) ``3 x 3`` stress or strain tensors, in ASE's order.

    Works on numpy and JAX arrays alike (also under ``jit``).

    Arguments:
        tensor: ``(..., 3, 3)`` tensors.

    Returns:
        ``(..., 6)``: ``xx yy zz yz xz xy`` of ``(tensor + tensor^T) / 2``.
    """
    t = 0.5 * (tensor + tensor.swapaxes(-1, -2))
    return t[..., _VOIGT[0], _VOIGT[1]]


def _stacked(source: str, pos: np.ndarray, num: np.ndarray, ene: np.ndarray, frc: np.ndarray):
    """Checks of the ``(F, N, 3)`` layout; returns packed arrays and atom counts."""
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise _fail(source, "positions", f"has shape {pos.shape}, expected (F, N, 3)")
    num_frames, num_atoms = pos.shape[0], pos.shape[1]
    if num_frames == 0:
        raise _fail(source, "positions", f"has 0 frames (shape {pos.shape}); the data set is empty")
    if num_atoms == 0:
        raise _fail(source, "positions", f"has 0 atoms per frame (shape {pos.shape})")
    if frc.ndim != 3 or frc.shape[-1] != 3:
        raise _fail(source, "forces", f"has shape {frc.shape}, expected (F, N, 3) = {pos.shape}")
    if frc.shape[0] != num_frames:
        raise _fail(source, "forces", f"has {frc.shape[0]} frames but 'positions' has {num_frames} "
                    f"(expected shape {pos.shape}, got {frc.shape})")
    if frc.shape != pos.shape:
        raise _fail(source, "forces", f"has shape {frc.shape}, expected {pos.shape} like 'positions'")
    expect = f"expected ({num_atoms},) or ({num_frames}, {num_atoms})"
    if num.ndim == 1 and num.shape[0] == num_atoms:
        num = np.broadcast_to(num, (num_frames, num_atoms))
    elif num.ndim not in (1, 2) or num.shape != (num_frames, num_atoms):
        raise _fail(source, "numbers", f"has shape {num.shape}, {expect} to match 'positions' {pos.shape}")
    counts = np.full(num_frames, num_atoms, np.int64)
    return pos.reshape(-1, 3), num.reshape(-1), frc.reshape(-1, 3), counts


def _per_frame(source: str, positions: Any, numbers: Any, forces: Any):
    """Checks of per-frame sequences ``[(n_f, 3), ...]``; returns packed arrays and atom counts."""
    if len(positions) == 0:
        raise _fail(source, "positions", "has 0 frames; the data set is empty")
    pos = [_numeric(source, "positions", p) for p in positions]
    for key, seq in (("numbers", numbers), ("forces", forces)):
        if len(seq) != len(pos):
            raise _fail(source, key, f"has {len(seq)} frames but 'positions' has {len(pos)}")
    num = [_numeric(source, "numbers", z) for z in numbers]
    frc = [_numeric(source, "forces", f) for f in forces]
    for f, (p, z, g) in enumerate(zip(pos, num, frc)):
        if p.ndim != 2 or p.shape[-1] != 3 or p.shape[0] == 0:
            raise _fail(source, "positions", f"frame {f} has shape {p.shape}, expected (n, 3), n >= 1")
        if z.shape != p.shape[:1]:
            raise _fail(source, "numbers", f"frame {f} has shape {z.shape}, expected {p.shape[:1]}")
        if g.shape != p.shape:
            raise _fail(source, "forces", f"frame {f} has shape {g.shape}, expected {p.shape} like 'positions'")
    counts = np.array([p.shape[0] for p in pos], np.int64)
    return np.concatenate(pos), np.concatenate(num), np.concatenate(frc), counts


def _check_values(source: str, arrays: dict[str, np.ndarray], frame_of: Any) -> None:
    for key, a in arrays.items():
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise _fail(source, key, f"must be real-valued, got dtype {a.dtype}")
        finite = np.isfinite(a)
        if not finite.all():
            first = int(frame_of(key, int(np.argwhere(~finite)[0][0])))
            raise _fail(source, key, f"contains {int((~finite).sum())} non-finite value(s) (NaN or "
                        f"inf); first at frame {first}; expected all finite")


def _periodic(source: str, cells: Any, pbc: Any, num_frames: int):
    if cells is None:
        if pbc is not None and np.any(pbc):
            raise _fail(source, "pbc", "is given without 'cells'")
        return None, None
    c = _numeric(source, "cells", cells).astype(np.float64)
    if c.shape == (3, 3):
        c = np.broadcast_to(c, (num_frames, 3, 3))
    if c.shape != (num_frames, 3, 3):
        raise _fail(source, "cells", f"has shape {c.shape}, expected ({num_frames}, 3, 3) or (3, 3) "
                    "(lattice vectors as rows, Å)")
    p = np.asarray(True if pbc is None else pbc)
    if p.shape not in ((), (3,), (num_frames, 3)):
        raise _fail(source, "pbc", f"has shape {p.shape}, expected (), (3,) or ({num_frames}, 3)")
    p = np.broadcast_to(p.astype(bool), (num_frames, 3))
    _check_values(source, {"cells": c.reshape(num_frames, 9)}, lambda key, i: i)
    volume = np.abs(np.linalg.det(c))
    bad = p.any(axis=1) & (volume < MIN_VOLUME)
    if bad.any():
        f = int(np.nonzero(bad)[0][0])
        raise _fail(source, "cells", f"of frame {f} has volume {volume[f]:.3g} Å³ (lattice vectors "
                    f"{c[f].tolist()}); a periodic frame (pbc={p[f].tolist()}) needs three "
                    f"independent lattice vectors (volume > {MIN_VOLUME:g} Å³)")
    return np.ascontiguousarray(c), np.ascontiguousarray(p)


def _stress(source: str, stresses: Any, mask: Any, pbc: np.ndarray | None, num_frames: int):
    if stresses is None:
        return None, None
    s = _numeric(source, "stresses", stresses).astype(np.float64)
    if s.shape == (num_frames, 3, 3):
        s = voigt(s)
    if s.shape != (num_frames, 6):
        raise _fail(source, "stresses", f"has shape {s.shape}, expected ({num_frames}, 6) (Voigt "
                    f"xx yy zz yz xz xy, eV/Å³) or ({num_frames}, 3, 3)")
    m = np.ones(num_frames, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != (num_frames,):
        raise _fail(source, "stress_mask", f"has shape {m.shape}, expected ({num_frames},)")
    periodic = np.zeros(num_frames, bool) if pbc is None else pbc.any(axis=1)
    if (m & ~periodic).any():
        f = int(np.nonzero(m & ~periodic)[0][0])
        raise _fail(source, "stresses", f"is given for frame {f}, which is not periodic (stress "
                    "needs a cell; mark it absent with stress_mask)")
    s = np.where(m[:, None], s, 0.0)
    _check_values(source, {"stresses": s}, lambda key, i: i)
    return np.ascontiguousarray(s), np.ascontiguousarray(m)


def validate_arrays(
    positions: Any,
    numbers: Any,
    energies: Any,
    forces: Any,
    *,
    cells: Any = None,
    pbc: Any = None,
    stresses: Any = None,
    stress_mask: Any = None,
    source: str = "<arrays>", config_types: Any = None,
) -> Dataset:
    """Check shapes, dtypes, frame counts, cells and finiteness, and return a :class:`Dataset`.

    Arguments:
        positions: ``(F, N, 3)`` real array (Å), or a sequence of ``F`` arrays ``(n_f, 3)``
            for frames of different sizes.
        numbers: ``(N,)`` (same atoms in every frame) or ``(F, N)`` integer atomic numbers, or
            a sequence of ``(n_f,)`` arrays.
        energies: ``(F,)`` real array of total energies (eV).
        forces: Like ``positions`` (eV/Å).
        cells: ``None``, ``(3, 3)`` or ``(F, 3, 3)`` lattice vectors as rows (Å).
        pbc: ``None`` (periodic everywhere with ``cells``), a bool, ``(3,)`` or ``(F, 3)`` bools.
        stresses: ``None``, ``(F, 6)`` Voigt (xx yy zz yz xz xy) or ``(F, 3, 3)`` stress in
            eV/Å³ with ASE's sign.
        stress_mask: ``(F,)`` bools, frames whose stress is known (default: all).
        source: Name of the data source, used in error messages.
        config_types: ``None`` or ``F`` strings, each frame's ``config_type``.

    Returns:
        A :class:`Dataset` (positions/forces float32, energies float64, numbers int32).

    Raises:
        DatasetError: naming the key and the expected vs actual shape, dtype or value when the
            data set is empty, has wrong shapes, mismatched frame or atom counts, non-integer or
            out-of-range atomic numbers, NaN/inf values, a zero-volume periodic cell, or a
            stress on a non-periodic frame.
    """
    ene = _numeric(source, "energies", energies)
    if isinstance(positions, (list, tuple)):
        pos, num, frc, counts = _per_frame(source, positions, numbers, forces)
    else:
        arrs = [_numeric(source, k, v) for k, v in
                (("positions", positions), ("numbers", numbers), ("forces", forces))]
        pos, num, frc, counts = _stacked(source, arrs[0], arrs[1], ene, arrs[2])
    num_frames = len(counts)
    if ene.ndim == 2 and ene.shape[1] == 1:
        ene = ene[:, 0]
    if ene.ndim != 1:
        raise _fail(source, "energies", f"has shape {ene.shape}, expected (F,) = ({num_frames},)")
    if ene.shape[0] != num_frames:
        raise _fail(source, "energies", f"has {ene.shape[0]} frames but 'positions' has "
                    f"{num_frames} (expected shape ({num_frames},), got {ene.shape})")
    offsets = np.concatenate([[0], np.cumsum(counts)])

    def frame_of(key: str, i: int) -> int:
        return i if key == "energies" else int(np.searchsorted(offsets, i, side="right") - 1)

    if not np.issubdtype(num.dtype, np.integer):
        if np.issubdtype(num.dtype, np.floating) and np.all(np.isfinite(num)) and np.all(num == np.round(num)):
            num = num.astype(np.int64)
        else:
            raise _fail(source, "numbers", f"must hold integer atomic numbers, got dtype {num.dtype}")
    bad = (num < 1) | (num > 118)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        f = frame_of("numbers", i)
        raise _fail(source, "numbers", f"must be atomic numbers in 1..118, got {int(num[i])} at "
                    f"(frame, atom) = ({f}, {i - int(offsets[f])})")
    _check_values(source, {"positions": pos, "energies": ene, "forces": frc}, frame_of)
    c, p = _periodic(source, cells, pbc, num_frames)
    s, m = _stress(source, stresses, stress_mask, p, num_frames)
    return Dataset(
        energies=np.ascontiguousarray(ene, dtype=np.float64), atom_counts=counts,
        atom_positions=np.ascontiguousarray(pos, dtype=np.float32),
        atom_numbers=np.ascontiguousarray(num, dtype=np.int32),
        atom_forces=np.ascontiguousarray(frc, dtype=np.float32),
        cells=c, pbc=p, stresses=s, stress_mask=m, source=source,
        config_types=_config_types(source, config_types, num_frames),
    )


def _config_types(source: str, config_types: Any, num_frames: int) -> np.ndarray | None:
    """``(F,)`` str labels, or ``None``."""
    if config_types is None:
        return None
    types = np.asarray([str(c) for c in config_types], dtype=str)
    if types.shape != (num_frames,):
        raise _fail(source, "config_types", f"has shape {types.shape}, expected ({num_frames},)")
    return types
