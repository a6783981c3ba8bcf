"""Neighbour lists (host vesin list and jittable fixed-capacity list) against brute force."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import brute_force_pairs, pair_set

from eqx_mp.neighbours import (
    FixedListSpec,
    check_structure,
    fixed_neighbour_list,
    neighbour_list,
)

_RNG = np.random.default_rng(0)
_TRICLINIC = np.array([[3.0, 0.0, 0.0], [1.9, 2.6, 0.0], [-0.8, 1.2, 2.4]])


def _random_in(cell, n, spread=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 3)) @ cell + spread * rng.normal(size=(n, 3))


# name: (positions, cutoff, cell, pbc)
CASES = {
    "orthorhombic": (_random_in(np.diag([7.0, 8.0, 9.0]), 20), 3.5, np.diag([7.0, 8.0, 9.0]), True),
    # cutoff 5 Å is more than twice the cell's plane spacings (~2.2-3 Å): an atom sees many
    # images of each neighbour and of itself; positions far outside the cell (unwrapped).
    "triclinic_small": (_random_in(_TRICLINIC, 3, spread=4.0, seed=1), 5.0, _TRICLINIC, True),
    "triclinic_large": (_random_in(3 * _TRICLINIC, 40, seed=2), 3.0, 3 * _TRICLINIC, True),
    "one_atom": (np.zeros((1, 3)), 4.0, np.diag([2.0, 2.5, 3.0]), True),
    "slab": (_random_in(_TRICLINIC, 4, spread=1.0, seed=3), 4.5, _TRICLINIC, [True, True, False]),
    "wire": (_random_in(_TRICLINIC, 4, seed=4), 4.0, _TRICLINIC, [False, True, False]),
    "molecule": (_random_in(np.eye(3) * 4.0, 10, seed=5), 3.0, None, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_host_list_equals_brute_force(case):
    pos, cutoff, cell, pbc = CASES[case]
    ref = brute_force_pairs(pos, cutoff, cell, pbc)
    nl = neighbour_list(pos, cutoff, cell, pbc)
    assert nl.dst.dtype == nl.src.dtype == nl.shifts.dtype == np.int32
    assert len(nl.dst) == len(ref) and pair_set(*nl, len(pos)) == ref
    assert np.all(np.diff(nl.dst) >= 0)
    # The convention r = x[src] - x[dst] + shifts @ cell gives the pair distances.
    c = np.zeros((3, 3)) if cell is None else cell
    r = pos[nl.src] - pos[nl.dst] + nl.shifts @ c
    assert np.all(np.linalg.norm(r, axis=1) < cutoff)
    if case == "triclinic_small":  # several images of itself and of each neighbour
        assert sum(1 for d, s, *_ in ref if d == s) > 10
        assert len(ref) > 30 * len(pos)


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_list_equals_brute_force(case):
    pos, cutoff, cell, pbc = CASES[case]
    ref = brute_force_pairs(pos, cutoff, cell, pbc)
    spec = FixedListSpec.allocate(pos, cutoff, cell, pbc, num_pairs=len(ref))
    nl = jax.jit(fixed_neighbour_list, static_argnames="spec")(
        jnp.asarray(pos), None if cell is None else jnp.asarray(cell), spec=spec)
    assert not bool(nl.overflow) and int(nl.num_pairs) == len(ref)
    assert nl.dst.shape == (spec.max_pairs,) and spec.max_pairs >= len(ref)
    assert pair_set(nl.dst, nl.src, nl.shifts, len(pos)) == ref
    d = np.asarray(nl.dst)
    assert np.all(np.diff(d) >= 0)  # sorted, padding (= N) at the end
    pad = d == len(pos)
    assert pad.sum() == spec.max_pairs - len(ref)
    assert np.all(np.asarray(nl.src)[pad] == len(pos)) and np.all(np.asarray(nl.shifts)[pad] == 0)


def test_fixed_list_overflow_and_regrowth():
    """Too few slots, a full bin, or a deformed cell set ``overflow``; grown specs recover."""
    pos, cutoff, cell, _ = CASES["triclinic_large"]
    ref = brute_force_pairs(pos, cutoff, cell)
    fn = jax.jit(fixed_neighbour_list, static_argnames="spec")
    small = FixedListSpec.allocate(pos, cutoff, cell, num_pairs=len(ref) // 2, growth=1.0)
    nl = fn(jnp.asarray(pos), jnp.asarray(cell), spec=small)
    assert bool(nl.overflow) and int(nl.num_pairs) == len(ref)  # exact count despite overflow
    grown = small.grow(int(nl.num_pairs), pos, cell)
    assert grown.max_pairs >= 1.5 * len(ref) - 1
    nl = fn(jnp.asarray(pos), jnp.asarray(cell), spec=grown)
    assert not bool(nl.overflow) and pair_set(nl.dst, nl.src, nl.shifts, len(pos)) == ref

    # A bin holding more atoms than its capacity.
    crowded = dataclasses.replace(grown, bin_capacity=1)
    assert bool(fn(jnp.asarray(pos), jnp.asarray(cell), spec=crowded).overflow)
    # Compressing the cell makes the bins thinner than the cutoff.
    squeezed = 0.8 * cell
    nl = fn(jnp.asarray(pos @ np.linalg.inv(cell) @ squeezed), jnp.asarray(squeezed), spec=grown)
    assert bool(nl.overflow)
    # Padding atoms (mask False) are in no pair.
    mask = np.arange(len(pos)) < 30
    nl = fn(jnp.asarray(pos), jnp.asarray(cell), spec=grown, mask=jnp.asarray(mask))
    assert pair_set(nl.dst, nl.src, nl.shifts, len(pos)) == {
        p for p in ref if p[0] < 30 and p[1] < 30}


def test_fixed_list_compiles_once_for_moving_atoms():
    pos, cutoff, cell, _ = CASES["orthorhombic"]
    spec = FixedListSpec.allocate(pos, cutoff, cell, num_pairs=len(brute_force_pairs(pos, cutoff, cell)))
    traces = []

    @jax.jit
    def step(p):
        traces.append(1)
        return fixed_neighbour_list(p, jnp.asarray(cell), spec=spec)

    rng = np.random.default_rng(7)
    for k in range(3):
        moved = pos + 0.05 * rng.normal(size=pos.shape) + k * cell[0]  # also leaves the cell
        nl = step(jnp.asarray(moved))
        assert not bool(nl.overflow)
        assert pair_set(nl.dst, nl.src, nl.shifts, len(pos)) == brute_force_pairs(moved, cutoff, cell)
    assert len(traces) == 1


def test_errors():
    pos = _RNG.normal(size=(4, 3))
    flat = np.array([[3.0, 0, 0], [0, 3.0, 0], [1.5, 1.5, 0]])
    with pytest.raises(ValueError, match=r"the cell has volume 0 Å³.*needs three independent"):
        neighbour_list(pos, 3.0, flat)
    with pytest.raises(ValueError, match=r"the cell has volume 0 Å³"):
        FixedListSpec.allocate(pos, 3.0, flat)
    nan = pos.copy()
    nan[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"positions of 1 atom\(s\) are NaN or inf \(first: atom 2"):
        neighbour_list(nan, 3.0, np.eye(3) * 5)
    with pytest.raises(ValueError, match=r"cutoff must be > 0 \(Å\), got 0"):
        neighbour_list(pos, 0.0)
    with pytest.raises(ValueError, match=r"cutoff=None \(all pairs\) needs pbc=False"):
        neighbour_list(pos, None, np.eye(3) * 5)
    with pytest.raises(ValueError, match=r"pbc=True needs a cell, got cell=None"):
        check_structure(pos, None, True)
    with pytest.raises(ValueError, match=r"positions must have shape \(n, 3\), got \(4, 2\)"):
        neighbour_list(pos[:, :2], 3.0)
    with pytest.raises(ValueError, match=r"cell must have shape \(3, 3\)"):
        neighbour_list(pos, 3.0, np.eye(2))
    # A slab may have a zero lattice vector only if no axis is periodic.
    np.testing.assert_array_equal(check_structure(pos, flat, False)[2], [False] * 3)
