"""An ASE calculator for :class:`~eqx_mp.models.Potential` (needs ASE: ``pip install ase``).

::

    from eqx_mp.calculator import Calculator
    atoms.calc = Calculator("runs/latest")          # a training run directory, or a Potential
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Each call builds the neighbour list (on the host with vesin, or inside ``jit`` with
``neighbours="jax"``) and evaluates the model on arrays padded to capacities (atoms, pairs) that
grow geometrically: a molecular-dynamics run compiles a handful of times, not once per step,
and pairs are never dropped (an overflowing capacity is grown and the step recomputed).
"""

from __future__ import annotations

import os
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

try:
    from ase.calculators.calculator import Calculator as _AseCalculator
    from ase.calculators.calculator import PropertyNotImplementedError, all_changes
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("eqx_mp.calculator needs ASE: pip install ase") from err

from .batching import Graph, grown_capacity, one_graph_batch, pack_graphs
from .md.engine import potential_in_dtype
from .models import BatchPrediction, Potential
from .neighbours import FixedListSpec, check_structure, fixed_neighbour_list, neighbour_list

__all__ = ["Calculator", "load_potential"]


def load_potential(path: str | os.PathLike[str]) -> Potential:
    """Read a :class:`Potential` from a training run directory or a ``.eqx`` file.

    The same as :func:`eqx_mp.train.load_model` (one model file format, :mod:`eqx_mp.io`).

    Arguments:
        path: A run directory containing ``model.eqx`` (written by ``python -m eqx_mp.train``)
            or the file itself (:func:`eqx_mp.io.save` format).

    Returns:
        The potential.

    Raises:
        FileNotFoundError: If there is no model file.
        ValueError: If the file is not in the format, is damaged, or holds another kind of module.
    """
    from .train.checkpoint import load_model

    return load_model(path)


@eqx.filter_jit
def _predict(model: Potential, batch: Any, stress: bool) -> BatchPrediction:
    return model.batch_predict(batch, stress=stress)


@eqx.filter_jit
def _predict_fixed(model: Potential, spec: FixedListSpec, positions, numbers, cell, mask, stress):
    """Neighbour list and model in one jitted call (one padded graph)."""
    nl = fixed_neighbour_list(positions, cell if any(spec.pbc) else None, spec=spec, mask=mask)
    batch = one_graph_batch(positions, numbers, nl.dst, nl.src, nl.shifts, cell, mask)
    return model.batch_predict(batch, stress=stress), nl.num_pairs, nl.overflow


class Calculator(_AseCalculator):
    """ASE calculator: energy, free energy, forces, stress and per-atom energies of a Potential.

    Arguments:
        model_or_run_dir: A :class:`~eqx_mp.models.Potential`, or a training run directory /
            ``.eqx`` file (:func:`load_potential`).
        neighbours: ``"host"`` (default: vesin on the host each call) or ``"jax"`` (a
            fixed-capacity cell list inside the jitted call, :func:`fixed_neighbour_list`).
        growth: Factor (``> 1``) by which capacities grow beyond what is needed.
        dtype: ``None`` (default: the model's own dtype), ``"float32"`` or ``"float64"``
            (needs ``jax_enable_x64``): the model's parameters and the inputs are cast to it.
            Asking for float32 from a float64 model warns.
        **kwargs: Passed to ``ase.calculators.calculator.Calculator`` (e.g. ``label``).

    Attributes:
        compiled_shapes: The ``(atom capacity, pair capacity, periodic)`` combinations
            evaluated so far (each costs one compilation).

    Raises (when calculating):
        ValueError: NaN positions, a periodic cell with zero volume, or an element the model does
            not know (the messages give the atoms, the volume, the element).
        PropertyNotImplementedError: ``stress`` of a structure without periodic boundaries.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model_or_run_dir: Potential | str | os.PathLike[str], *,
                 neighbours: str = "host", growth: float = 1.5, dtype: str | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        model = (model_or_run_dir if isinstance(model_or_run_dir, Potential)
                 else load_potential(model_or_run_dir))
        if neighbours not in ("host", "jax"):
            raise ValueError(f"neighbours must be 'host' or 'jax', got {neighbours!r}")
        if not growth > 1:
            raise ValueError(f"growth must be > 1, got {growth}")
        self.model, self.dtype = potential_in_dtype(model, dtype, what="Calculator")
        self.neighbours, self.growth = neighbours, float(growth)
        self._atoms_cap = self._pairs_cap = 0
        self._spec: FixedListSpec | None = None
        self.compiled_shapes: set[tuple[int, int, bool]] = set()

    def _structure(self, atoms: Any):
        cell = atoms.cell.array if atoms.pbc.any() else None
        pos, cell, pbc = check_structure(atoms.positions, cell, atoms.pbc if cell is not None else None,
                                         what=f"Calculator({atoms.get_chemical_formula()})")
        self.model.check_numbers(atoms.numbers)
        return pos, cell, pbc

    def _host(self, pos, numbers, cell, pbc, stress):
        nl = neighbour_list(pos, self.model.cutoff, cell, pbc)
        self._atoms_cap = grown_capacity(len(pos), self._atoms_cap, self.growth)
        self._pairs_cap = grown_capacity(len(nl.dst), self._pairs_cap, self.growth)
        graph = Graph(pos, numbers, 0.0, None, nl.dst, nl.src,
                      shifts=None if cell is None else nl.shifts, cell=cell)
        batch = pack_graphs([graph], max_nodes=self._atoms_cap, max_edges=self._pairs_cap,
                            max_graphs=1, dtype=self.dtype)
        self.compiled_shapes.add((self._atoms_cap, self._pairs_cap, stress))
        return _predict(self.model, batch, stress)

    def _jax(self, pos, numbers, cell, pbc, stress):
        n = len(pos)
        if n > self._atoms_cap or self._spec is None or self._spec.pbc != tuple(pbc):
            self._atoms_cap = grown_capacity(n, self._atoms_cap, self.growth)
            pairs = len(neighbour_list(pos, self.model.cutoff, cell, pbc).dst)
            self._spec = FixedListSpec.allocate(pos, self.model.cutoff, cell, pbc,
                                                growth=self.growth, num_pairs=pairs)
        cap = self._atoms_cap
        padded = np.zeros((cap, 3))
        padded[:n] = pos
        z = np.zeros(cap, np.int32)
        z[:n] = numbers
        args = (jnp.asarray(padded, self.dtype), jnp.asarray(z),
                jnp.asarray(np.eye(3) if cell is None else cell, self.dtype),
                jnp.asarray(np.arange(cap) < n))
        for _ in range(4):
            self.compiled_shapes.add((cap, self._spec.max_pairs, stress))
            pred, num_pairs, overflow = _predict_fixed(self.model, self._spec, *args, stress)
            if not bool(overflow):
                return pred
            self._spec = self._spec.grow(int(num_pairs), pos, cell, growth=self.growth)
        raise RuntimeError(f"the fixed neighbour list still overflows after regrowth ({self._spec})")

    def calculate(self, atoms: Any = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        """Compute ``properties`` of ``atoms`` into ``self.results`` (ASE's calculator protocol).

        Arguments:
            atoms: The ``ase.Atoms``.
            properties: Names from :attr:`implemented_properties` (all are computed at once,
                stress only for periodic structures).
            system_changes: What changed since the last call (ASE's list).
        """
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pos, cell, pbc = self._structure(atoms)
        periodic = cell is not None
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError(
                "stress needs periodic boundary conditions and a cell (atoms.pbc is all False)")
        run = self._host if self.neighbours == "host" else self._jax
        pred = run(pos, atoms.numbers, cell, pbc, periodic)
        n = len(atoms)
        energy = float(pred.energies[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.asarray(pred.forces[:n], np.float64),
        }
        if pred.atomic_energies is not None:  # batch_predict always returns them
            self.results["energies"] = np.asarray(pred.atomic_energies[:n], np.float64)
        if periodic and pred.stresses is not None:
            self.results["stress"] = np.asarray(pred.stresses[0], np.float64)
