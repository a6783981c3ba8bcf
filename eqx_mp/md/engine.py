"""Molecular dynamics inside ``jit``: integrators as a ``lax.scan`` over steps.

A step is one pure function of an :class:`MDState`; a *chunk* of frames (each ``interval``
steps) is one jitted ``lax.scan`` that returns to the host only with the frames to write. The
neighbour list is a fixed-capacity list (:func:`eqx_mp.neighbours.fixed_neighbour_list`) built
with ``cutoff + skin`` and rebuilt inside ``jit`` when a pair within the cutoff may be missing
from it: for a fixed cell, when an atom has moved more than half the skin since the last build;
under a barostat, by a bound that also counts the cell's deformation (:func:`_stale`). Pairs
between the cutoff and ``cutoff + skin`` contribute exactly zero (smooth cutoff). A rebuild
that overflows sets a sticky flag; the host (:class:`eqx_mp.md.Simulation`) then grows the
capacities and redoes the chunk, so no pair is ever dropped.

Integrators: :class:`VelocityVerlet` (NVE) and :class:`Langevin` (BAOAB) here; a Nosé-Hoover
chain (NVT) and the isotropic MTK barostat (NPT) in :mod:`eqx_mp.md.thermostats`.

Units are ASE's: eV, Å, atomic mass units, time in ``FS`` per femtosecond, momenta ``m v``.
"""

from __future__ import annotations

import abc
import math
import warnings
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ..batching import one_graph_batch
from ..models import Potential
from ..neighbours import FixedListSpec, fixed_neighbour_list

__all__ = ["FS", "KB", "ForceField", "Integrator", "Langevin", "MDState", "PotentialForces",
           "VelocityVerlet", "Frames", "model_dtype", "potential_in_dtype", "run_chunk",
           "start_state"]

#: ASE's time unit per femtosecond, ``1e-5 sqrt(e / amu)`` (CODATA 2014, as ``ase.units.fs``).
FS = 1e-5 * math.sqrt(1.6021766208e-19 / 1.660539040e-27)
#: Boltzmann's constant in eV/K (CODATA 2014, as ``ase.units.kB``).
KB = 1.38064852e-23 / 1.6021766208e-19


def model_dtype(model: Any) -> Any:
    """The float dtype of a model's parameters.

    Arguments:
        model: An Equinox module (e.g. a :class:`~eqx_mp.models.Potential`).

    Returns:
        The dtype of its first floating-point array leaf (``float32`` if it has none).
    """
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return jnp.dtype(leaves[0].dtype) if leaves else jnp.dtype(jnp.float32)


def potential_in_dtype(model: Any, dtype: Any = None, *, what: str = "eqx_mp") -> tuple[Any, Any]:
    """The model cast to the dtype it computes in: its own unless ``dtype`` says otherwise.

    Asking for float32 from a float64 model is allowed and warns (once per call site).

    Arguments:
        model: The potential (or any Equinox module).
        dtype: ``None`` (the model's dtype), ``"float32"`` or ``"float64"``.
        what: Name used in messages.

    Returns:
        ``(model, dtype)``: the model with every floating leaf of ``dtype``, and the dtype.

    Raises:
        ValueError: For another dtype, or float64 without ``jax_enable_x64``.
    """
    own = model_dtype(model)
    target = own if dtype is None else jnp.dtype(dtype)
    if target not in (jnp.float32, jnp.float64):
        raise ValueError(f"{what}: dtype must be 'float32' or 'float64', got {dtype!r}")
    if target == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(f"{what}: dtype='float64' needs jax.config.update('jax_enable_x64', True)")
    if own == jnp.float64 and target == jnp.float32:
        warnings.warn(f"{what}: the model is float64 but computes in float32 as asked "
                      "(dtype='float32'); pass dtype=None to use the model's precision",
                      stacklevel=3)
    cast = jax.tree_util.tree_map(lambda a: a.astype(target) if eqx.is_inexact_array(a) else a,
                                  model)
    return cast, target


class ForceField(eqx.Module):
    """Energy and forces of one structure from a padded neighbour list (the MD engine's model)."""

    @abc.abstractmethod
    def __call__(self, positions: Float[Array, "N 3"], cell: Float[Array, "3 3"] | None,
                 dst: Int[Array, " P"], src: Int[Array, " P"], shifts: Int[Array, "P 3"]
                 ) -> tuple[Float[Array, ""], Float[Array, "N 3"]]:
        """Energy (eV) and forces (eV/Å).

        Arguments:
            positions: ``(N, 3)`` positions (Å).
            cell: ``(3, 3)`` lattice vectors as rows (Å), or ``None`` for an isolated structure.
            dst: ``(P,)`` destination atoms; ``N`` in padding slots.
            src: ``(P,)`` source atoms; ``N`` in padding slots.
            shifts: ``(P, 3)`` cell shifts, ``r = x[src] - x[dst] + shifts @ cell``.

        Returns:
            ``(energy, forces)``: ``()`` and ``(N, 3)``.
        """

    def with_stress(self, positions: Float[Array, "N 3"], cell: Float[Array, "3 3"],
                    dst: Int[Array, " P"], src: Int[Array, " P"], shifts: Int[Array, "P 3"]
                    ) -> tuple[Float[Array, ""], Float[Array, "N 3"], Float[Array, "6"]]:
        """Energy, forces and the stress of a periodic structure (what a barostat needs).

        Arguments:
            positions, cell, dst, src, shifts: As :meth:`__call__` (``cell`` is required).

        Returns:
            ``(energy, forces, stress)``: ``()``, ``(N, 3)`` and the ``(6,)`` Voigt stress
            ``(xx, yy, zz, yz, xz, xy)`` in eV/Å³ (ASE's convention, without the kinetic part).

        Raises:
            NotImplementedError: for a force field that gives no stress.
        """
        raise NotImplementedError(f"{type(self).__name__} gives no stress: implement "
                                  "with_stress to run it under a barostat")


class PotentialForces(ForceField):
    """A :class:`~eqx_mp.models.Potential` on given atomic numbers, as a :class:`ForceField`.

    Arguments:
        model: The potential.
        numbers: ``(N,)`` atomic numbers.
    """

    model: Potential
    numbers: Int[Array, " N"]

    def __call__(self, positions, cell, dst, src, shifts):
        batch = one_graph_batch(positions, self.numbers, dst, src, shifts, cell)
        pred = self.model.batch_predict(batch, stress=False)
        return pred.energies[0], pred.forces

    def with_stress(self, positions, cell, dst, src, shifts):
        batch = one_graph_batch(positions, self.numbers, dst, src, shifts, cell)
        pred = self.model.batch_predict(batch, stress=True)
        assert pred.stresses is not None  # asked for
        return pred.energies[0], pred.forces, pred.stresses[0]


class MDState(NamedTuple):
    """Everything a step changes (a pytree; ``P`` pair slots of the neighbour list).

    Attributes:
        positions: ``(N, 3)`` unwrapped positions (Å).
        momenta: ``(N, 3)`` momenta ``m v`` (amu Å / ASE time).
        forces: ``(N, 3)`` forces at ``positions`` (eV/Å).
        energy: ``()`` potential energy (eV).
        cell: ``(3, 3)`` lattice vectors as rows (Å; the identity for isolated structures).
        dst, src, shifts: The neighbour list, ``(P,)``, ``(P,)``, ``(P, 3)``.
        reference: ``(N, 3)`` positions at the last build of the list.
        reference_cell: ``(3, 3)`` the cell at the last build.
        key: PRNG key of the thermostat noise.
        rebuilds: ``()`` int32 neighbour-list builds so far.
        overflow: ``()`` bool, sticky: a build did not fit (the chunk must be redone).
        num_pairs: ``()`` int32 largest number of pairs any build found.
        overflow_positions: ``(N, 3)`` positions of the first overflowing build.
        thermostat: ``(2, M)`` the integrator's own variables (a Nosé-Hoover chain's positions
            and momenta; ``M = 0`` for the others).
        stress: ``(6,)`` Voigt stress at ``positions`` (eV/Å³; zero unless the integrator
            needs it).
    """

    positions: Array
    momenta: Array
    forces: Array
    energy: Array
    cell: Array
    dst: Array
    src: Array
    shifts: Array
    reference: Array
    reference_cell: Array
    key: Array
    rebuilds: Array
    overflow: Array
    num_pairs: Array
    overflow_positions: Array
    thermostat: Array
    stress: Array


class Integrator(eqx.Module):
    """One time step of an integrator (``timestep`` in fs)."""

    timestep: eqx.AbstractVar[float]
    #: Whether each force evaluation must also give the stress (``MDState.stress``).
    needs_stress: ClassVar[bool] = False

    def thermostat_start(self, dtype: Any) -> Float[Array, "2 M"]:
        """The integrator's own variables at the start (``MDState.thermostat``).

        Arguments:
            dtype: The float dtype of the run.

        Returns:
            ``(2, M)``; ``(2, 0)`` for an integrator without variables of its own.
        """
        return jnp.zeros((2, 0), dtype)

    def thermostat_energy(self, state: MDState, masses: Float[Array, "N 1"]) -> Float[Array, ""]:
        """The energy (eV) of the integrator's own variables, so that potential + kinetic + this
        is the quantity the dynamics conserves (zero for velocity Verlet and Langevin).

        Arguments:
            state: The current :class:`MDState`.
            masses: ``(N, 1)`` masses (amu).

        Returns:
            ``()`` energy in eV.
        """
        return jnp.zeros((), state.energy.dtype)

    @abc.abstractmethod
    def step(self, state: MDState, masses: Float[Array, "N 1"], forces_at: Any) -> MDState:
        """Advance one step.

        Arguments:
            state: The current :class:`MDState`.
            masses: ``(N, 1)`` masses (amu).
            forces_at: ``state -> state`` recomputing energy and forces (and the list if needed)
                after the positions moved.

        Returns:
            The next state.
        """


class VelocityVerlet(Integrator):
    """Velocity Verlet (NVE).

    Arguments:
        timestep: Time step (fs).
    """

    timestep: float

    def step(self, state, masses, forces_at):
        dt = self.timestep * FS
        p = state.momenta + 0.5 * dt * state.forces
        state = forces_at(state._replace(positions=state.positions + dt * p / masses, momenta=p))
        return state._replace(momenta=state.momenta + 0.5 * dt * state.forces)


class Langevin(Integrator):
    """Langevin dynamics (NVT) by BAOAB splitting (Leimkuhler and Matthews 2013).

    Arguments:
        timestep: Time step (fs).
        temperature: Thermostat temperature (K).
        friction: Friction coefficient (1/fs).
    """

    timestep: float
    temperature: float
    friction: float

    def step(self, state, masses, forces_at):
        dt = self.timestep * FS
        c1 = math.exp(-self.friction / FS * dt)
        key, noise = jax.random.split(state.key)
        p = state.momenta + 0.5 * dt * state.forces
        x = state.positions + 0.5 * dt * p / masses
        xi = jax.random.normal(noise, p.shape, p.dtype)
        p = c1 * p + math.sqrt((1 - c1**2) * KB * self.temperature) * jnp.sqrt(masses) * xi
        x = x + 0.5 * dt * p / masses
        state = forces_at(state._replace(positions=x, momenta=p, key=key))
        return state._replace(momenta=state.momenta + 0.5 * dt * state.forces)


def _build(spec: FixedListSpec, state: MDState) -> MDState:
    """A fresh neighbour list at ``state.positions`` (records overflow, never drops silently)."""
    periodic = any(spec.pbc)
    nl = fixed_neighbour_list(state.positions, state.cell if periodic else None, spec=spec)
    first = nl.overflow & ~state.overflow
    return state._replace(
        dst=nl.dst, src=nl.src, shifts=nl.shifts, reference=state.positions,
        reference_cell=state.cell, rebuilds=state.rebuilds + 1,
        overflow=state.overflow | nl.overflow, num_pairs=jnp.maximum(state.num_pairs, nl.num_pairs),
        overflow_positions=jnp.where(first, state.positions, state.overflow_positions))


def _evaluate(field: ForceField, spec: FixedListSpec, state: MDState, stress: bool) -> MDState:
    if stress:
        if not any(spec.pbc):
            raise ValueError("a barostat needs a periodic structure (cell=...)")
        energy, forces, voigt = field.with_stress(state.positions, state.cell, state.dst,
                                                  state.src, state.shifts)
        return state._replace(energy=energy, forces=forces, stress=voigt)
    cell = state.cell if any(spec.pbc) else None
    energy, forces = field(state.positions, cell, state.dst, state.src, state.shifts)
    return state._replace(energy=energy, forces=forces)


def _smallest_singular_value(t: Float[Array, "3 3"]) -> Float[Array, ""]:
    """``σ_min(t)`` in closed form (the smallest eigenvalue of ``tᵀt``, trigonometric method):
    elementwise arithmetic only, no solver call inside the step; exactly 1 for the identity."""
    m = t.T @ t
    q = jnp.trace(m) / 3
    off = m[0, 1] ** 2 + m[0, 2] ** 2 + m[1, 2] ** 2
    p = jnp.sqrt(((m[0, 0] - q) ** 2 + (m[1, 1] - q) ** 2 + (m[2, 2] - q) ** 2 + 2 * off) / 6)
    safe = jnp.where(p > 0, p, 1.0)
    r = jnp.linalg.det((m - q * jnp.eye(3, dtype=m.dtype)) / safe) / 2
    phi = jnp.arccos(jnp.clip(r, -1.0, 1.0)) / 3
    smallest = jnp.where(p > 0, q + 2 * safe * jnp.cos(phi + 2 * math.pi / 3), q)
    return jnp.sqrt(jnp.maximum(smallest, 0.0))


def _stale(spec: FixedListSpec, skin: float, state: MDState) -> Bool[Array, ""]:
    """Whether a pair within the cutoff may be missing from the list.

    With ``T = reference_cell⁻¹ cell`` (the cell's deformation since the build; the identity for
    a fixed cell) and ``d`` the largest displacement of an atom from its build position carried
    along by the deformation (``|x - x_ref T|``), a pair listed out at ``cutoff + skin`` is now
    at least ``σ_min(T) (cutoff + skin) - 2 d`` apart. The list is stale when that can be below
    the cutoff (less a relative ``1e-5`` for rounding); for a fixed cell, when an atom moved
    more than half the skin.
    """
    ref = state.reference_cell
    # ref⁻¹ by cofactors (3x3; the determinant is the cell's volume, never 0).
    cof = jnp.stack([jnp.cross(ref[1], ref[2]), jnp.cross(ref[2], ref[0]),
                     jnp.cross(ref[0], ref[1])], axis=1)
    deform = cof @ state.cell / jnp.dot(ref[0], cof[:, 0])
    moved = state.positions - state.reference @ deform
    largest = jnp.sqrt(jnp.max(jnp.sum(moved**2, axis=-1)))
    reach = _smallest_singular_value(deform) * spec.cutoff - 2 * largest
    return reach < (spec.cutoff - skin) + 1e-5 * spec.cutoff


def _forces_at(field: ForceField, spec: FixedListSpec, skin: float, stress: bool):
    """``state -> state``: rebuild the list if it may miss a pair (:func:`_stale`), then
    evaluate energy and forces (and the stress)."""

    def update(state: MDState) -> MDState:
        state = jax.lax.cond(_stale(spec, skin, state), lambda s: _build(spec, s), lambda s: s,
                             state)
        return _evaluate(field, spec, state, stress)

    return update


@eqx.filter_jit
def start_state(field: ForceField, spec: FixedListSpec, positions: Float[Array, "N 3"],
                momenta: Float[Array, "N 3"], cell: Float[Array, "3 3"], key: Array,
                rebuilds: Int[Array, ""], thermostat: Float[Array, "2 M"],
                stress: bool = False) -> MDState:
    """The state at given positions: a fresh neighbour list, energy and forces.

    Arguments:
        field: The :class:`ForceField`.
        spec: Neighbour-list capacities (cutoff = the model's cutoff + skin).
        positions: ``(N, 3)`` positions (Å).
        momenta: ``(N, 3)`` momenta.
        cell: ``(3, 3)`` lattice vectors as rows (the identity for isolated structures).
        key: PRNG key.
        rebuilds: Builds so far (carried over).
        thermostat: ``(2, M)`` the integrator's variables (:meth:`Integrator.thermostat_start`,
            or carried over).
        stress: Whether to evaluate the stress too (static; :attr:`Integrator.needs_stress`).

    Returns:
        The :class:`MDState` (check ``overflow`` before using it).
    """
    n = positions.shape[0]
    empty = jnp.zeros((spec.max_pairs,), jnp.int32)
    state = MDState(positions, momenta, jnp.zeros_like(positions), jnp.zeros((), positions.dtype),
                    cell, empty, empty, jnp.zeros((spec.max_pairs, 3), jnp.int32), positions,
                    cell, key, rebuilds, jnp.zeros((), bool), jnp.zeros((), jnp.int32),
                    jnp.zeros((n, 3), positions.dtype), thermostat,
                    jnp.zeros((6,), positions.dtype))
    return _evaluate(field, spec, _build(spec, state), stress)


class Frames(NamedTuple):
    """What a chunk returns per frame (``K`` frames): positions, momenta, forces, thermo
    (``thermostat``: :meth:`Integrator.thermostat_energy`) and the cell."""

    positions: Float[Array, "K N 3"]
    momenta: Float[Array, "K N 3"]
    forces: Float[Array, "K N 3"]
    energy: Float[Array, " K"]
    kinetic: Float[Array, " K"]
    thermostat: Float[Array, " K"]
    cell: Float[Array, "K 3 3"]


@eqx.filter_jit
def run_chunk(field: ForceField, integrator: Integrator, spec: FixedListSpec, skin: float,
              masses: Float[Array, "N 1"], state: MDState, num_frames: int, interval: int
              ) -> tuple[MDState, Frames, Bool[Array, ""]]:
    """``num_frames * interval`` steps as one ``lax.scan`` of frames of ``interval`` steps.

    Arguments:
        field: The :class:`ForceField`.
        integrator: The :class:`Integrator`.
        spec: Neighbour-list capacities (static).
        skin: Skin (Å): the list is rebuilt when an atom moved more than ``skin / 2``.
        masses: ``(N, 1)`` masses (amu).
        state: The start :class:`MDState`.
        num_frames: Frames (static).
        interval: Steps per frame (static).

    Returns:
        ``(state, frames, overflow)``; if ``overflow`` the chunk is invalid and must be redone
        with a grown ``spec``.
    """
    update = _forces_at(field, spec, skin, integrator.needs_stress)

    def one_step(s, _):
        return integrator.step(s, masses, update), None

    def frame(s, _):
        s, _ = jax.lax.scan(one_step, s, None, length=interval)
        kinetic = 0.5 * jnp.sum(s.momenta**2 / masses)
        return s, Frames(s.positions, s.momenta, s.forces, s.energy, kinetic,
                         integrator.thermostat_energy(s, masses), s.cell)

    state, frames = jax.lax.scan(frame, state, None, length=num_frames)
    return state, frames, state.overflow
