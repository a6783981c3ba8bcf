"""Data sets with frames of different sizes, cells, pbc and stress; the embedded bulk set."""

from __future__ import annotations

import dataclasses

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from eqx_mp import batching
from eqx_mp.data import EMBEDDED_DATASETS, DatasetError, load_dataset, validate_arrays
from eqx_mp.neighbours import neighbour_list


@pytest.fixture(scope="module")
def bulk():
    return load_dataset("bulk")


def test_embedded_bulk_set_is_emt(bulk):
    path = EMBEDDED_DATASETS["bulk"]
    assert path.stat().st_size <= 2 * 1024 * 1024
    assert len(bulk) == 960 and bulk.atom_counts.min() == 30 and bulk.atom_counts.max() == 108
    assert not bulk.is_uniform and bulk.is_periodic.all() and bulk.stress_mask.all()
    assert set(np.unique(bulk.atom_numbers)) == {29, 78}
    raw = np.load(path)
    assert set(np.unique(raw["vacancies"])) == {0, 1, 2}
    assert np.abs(raw["strains"]).max() <= 0.03 and np.abs(raw["strains"]).max() > 0.025
    assert 300 <= raw["temperatures"].min() and raw["temperatures"].max() <= 1500
    # Recompute the EMT reference of a few frames: energies, forces and stress.
    for f in (0, 333, 959):
        atoms = bulk.to_atoms(f)
        ref = atoms.calc
        atoms.calc = EMT()
        np.testing.assert_allclose(atoms.get_potential_energy(), ref.results["energy"], atol=1e-4)
        np.testing.assert_allclose(atoms.get_forces(), ref.results["forces"], atol=1e-4)
        np.testing.assert_allclose(atoms.get_stress(), ref.results["stress"], atol=1e-7)
    # Forces of a periodic frame sum to zero; the cells are strained (triclinic).
    fr = bulk.frame(100)
    assert np.abs(fr.forces.sum(0)).max() < 1e-3
    assert np.abs(fr.cell - np.diag(np.diag(fr.cell))).max() > 0.01


def test_views_subset_and_counts(bulk):
    sub = bulk.subset([959, 0, 500])
    np.testing.assert_array_equal(sub.atom_counts, bulk.atom_counts[[959, 0, 500]])
    for k, f in enumerate([959, 0, 500]):
        a, b = sub.frame(k), bulk.frame(f)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.forces, b.forces)
        np.testing.assert_array_equal(a.stress, b.stress)
        np.testing.assert_array_equal(a.cell, b.cell)
    with pytest.raises(DatasetError, match=r"'positions' needs frames of equal size, but they have "
                                           r"30\.\.108 atoms; use dataset\.frame\(i\)"):
        bulk.positions
    same = bulk.subset(np.nonzero(bulk.atom_counts == 108)[0][:3])
    assert same.positions.shape == (3, 108, 3) and same.num_atoms == 108
    by_mask = bulk.subset(bulk.atom_counts == 108)
    np.testing.assert_array_equal(by_mask.energies, bulk.energies[bulk.atom_counts == 108])
    elements, counts = bulk.element_counts()
    np.testing.assert_array_equal(elements, [29, 78])
    np.testing.assert_array_equal(counts.sum(1), bulk.atom_counts)
    cluster = load_dataset("cluster")
    assert cluster.cells is None and cluster.frame(0).cell is None and not cluster.is_periodic.any()


def test_packed_npz_and_extxyz_roundtrips(bulk, tmp_path):
    sub = bulk.subset([0, 181, 600])
    npz = tmp_path / "mixed.npz"
    np.savez(npz, positions=sub.atom_positions, numbers=sub.atom_numbers, forces=sub.atom_forces,
             energies=sub.energies, atom_counts=sub.atom_counts, cells=sub.cells, pbc=sub.pbc,
             stresses=sub.stresses)
    xyz = tmp_path / "mixed.extxyz"
    ase.io.write(xyz, [sub.to_atoms(i) for i in range(3)])
    for path in (npz, xyz):
        loaded = load_dataset(path)
        for field in ("atom_counts", "atom_numbers", "pbc", "stress_mask"):
            np.testing.assert_array_equal(getattr(loaded, field), getattr(sub, field))
        for field in ("atom_positions", "atom_forces", "energies", "cells", "stresses"):
            np.testing.assert_allclose(getattr(loaded, field), getattr(sub, field), rtol=1e-6, atol=1e-6)


def test_mixed_molecules_and_crystals_from_ase(tmp_path):
    """An extxyz with an isolated molecule (no stress) and a slab with stress."""
    mol = ase.Atoms("Cu2", positions=[[0, 0, 0], [2.4, 0, 0]])
    mol.calc = SinglePointCalculator(mol, energy=1.0, forces=np.ones((2, 3)))
    slab = ase.Atoms("Cu3", positions=np.eye(3) * 1.5, cell=np.diag([4.0, 4.0, 9.0]),
                     pbc=[True, True, False])
    slab.calc = SinglePointCalculator(slab, energy=2.0, forces=np.zeros((3, 3)),
                                      stress=np.arange(6) * 0.01)
    path = tmp_path / "mix.extxyz"
    ase.io.write(path, [mol, slab])
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.atom_counts, [2, 3])
    np.testing.assert_array_equal(ds.pbc, [[False] * 3, [True, True, False]])
    np.testing.assert_array_equal(ds.stress_mask, [False, True])
    assert ds.frame(0).cell is None and ds.frame(0).stress is None
    np.testing.assert_allclose(ds.frame(1).stress, np.arange(6) * 0.01)
    graphs = batching.graphs_from_dataset(ds, cutoff=3.0)
    assert graphs[0].cell is None and graphs[0].shifts is None
    nl = neighbour_list(slab.positions, 3.0, slab.cell.array, slab.pbc)
    np.testing.assert_array_equal(graphs[1].shifts, nl.shifts)
    batch = batching.pack_graphs(graphs, max_nodes=6, max_edges=len(nl.dst) + 4, max_graphs=3)
    np.testing.assert_array_equal(batch.stress_mask, [False, True, False])
    np.testing.assert_allclose(batch.cells[1], slab.cell.array)
    np.testing.assert_array_equal(batch.cells[[0, 2]], 0)
    e0 = graphs[0].num_edges
    np.testing.assert_allclose(batch.shifts[e0:e0 + len(nl.dst)], nl.shifts)


def _periodic_arrays(**override):
    rng = np.random.default_rng(0)
    arrays = dict(positions=rng.normal(size=(3, 2, 3)), numbers=[29, 78], energies=np.zeros(3),
                  forces=np.zeros((3, 2, 3)), cells=np.eye(3) * 4.0, stresses=np.zeros((3, 6)))
    arrays.update(override)
    return arrays


BAD = {
    "flat cell": (dict(cells=np.array([[4.0, 0, 0], [0, 4.0, 0], [4.0, 4.0, 0]])),
                  r"key 'cells' of frame 0 has volume 0 Å³"),
    "cells shape": (dict(cells=np.ones((2, 3, 3))), r"key 'cells' has shape \(2, 3, 3\), expected \(3, 3, 3\)"),
    "stress shape": (dict(stresses=np.zeros((3, 5))), r"key 'stresses' has shape \(3, 5\), expected \(3, 6\)"),
    "NaN stress": (dict(stresses=np.full((3, 6), np.nan)), r"key 'stresses' contains 18 non-finite"),
    "stress without pbc": (dict(pbc=False), r"key 'stresses' is given for frame 0, which is not periodic"),
    "NaN cell": (dict(cells=np.full((3, 3), np.nan)), r"key 'cells' contains 27 non-finite"),
    "ragged shapes": (dict(positions=[np.zeros((2, 3)), np.zeros((3, 3)), np.zeros((2, 3))],
                           numbers=[[29, 29]] * 3, forces=[np.zeros((2, 3))] * 3),
                      r"key 'numbers' frame 1 has shape \(2,\), expected \(3,\)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_periodic_validation_errors(case):
    override, pattern = BAD[case]
    with pytest.raises(DatasetError, match=pattern):
        validate_arrays(**_periodic_arrays(**override))


def test_replace_keeps_working(bulk):
    changed = dataclasses.replace(bulk.subset([1]), energies=np.array([7.0]))
    assert changed.frame(0).energy == 7.0 and changed.frame(0).positions.shape == bulk.frame(1).positions.shape
