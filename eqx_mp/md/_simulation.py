"""The host side of the in-JAX engine: chunks, neighbour-list regrowth, frames and logs."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbours import FixedListSpec, check_structure, fixed_neighbour_list
from .engine import (
    KB,
    ForceField,
    Frames,
    Integrator,
    MDState,
    PotentialForces,
    potential_in_dtype,
    run_chunk,
    start_state,
)

__all__ = ["Simulation"]

#: Regrowths of one chunk after which the engine gives up (the capacities grow geometrically).
MAX_REGROWTHS = 8


@functools.partial(jax.jit, static_argnames="spec")
def _count_pairs(positions: Any, cell: Any, spec: FixedListSpec) -> Any:
    return fixed_neighbour_list(positions, cell, spec=spec).num_pairs


def _allocate(pos: np.ndarray, cutoff: float, cell: np.ndarray | None, pbc: np.ndarray,
              growth: float) -> FixedListSpec:
    """Capacities for the pairs there are (counted inside ``jit``) with ``growth`` to spare."""
    bound = FixedListSpec.allocate(pos, cutoff, cell, pbc, growth=growth)
    count = _count_pairs(jnp.asarray(pos), None if cell is None else jnp.asarray(cell), bound)
    return FixedListSpec.allocate(pos, cutoff, cell, pbc, growth=growth, num_pairs=int(count))


class Simulation:
    """Molecular dynamics of one structure inside ``jit``, chunk by chunk.

    Arguments:
        model: A :class:`~eqx_mp.models.Potential`, or any :class:`~eqx_mp.md.engine.ForceField`
            (then ``numbers`` only sets the masses' defaults and is not passed to it).
        positions: ``(N, 3)`` positions (Å).
        numbers: ``(N,)`` atomic numbers.
        masses: ``(N,)`` masses (amu).
        integrator: :class:`~eqx_mp.md.engine.VelocityVerlet`,
            :class:`~eqx_mp.md.engine.Langevin`, :class:`~eqx_mp.md.thermostats.NoseHooverChain` or
            :class:`~eqx_mp.md.thermostats.IsotropicMTKNPT` (periodic structures; the cell follows
            the pressure).
        cell: ``(3, 3)`` lattice vectors as rows (Å) of a periodic structure, or ``None``.
        pbc: Periodic directions (default: all with a cell).
        momenta: ``(N, 3)`` initial momenta (default: zero).
        skin: Neighbour-list skin (Å): pairs within ``cutoff + skin`` are listed and the list is
            rebuilt when an atom has moved more than ``skin / 2``.
        cutoff: The interaction cutoff (Å); default: ``model.cutoff``.
        dtype: ``None`` (the model's dtype), ``"float32"`` or ``"float64"``.
        growth: Factor (``>= 1``) of spare capacity when the list is allocated or regrown.
        seed: Seed of the thermostat noise.

    Attributes:
        rebuilds: Neighbour-list builds so far (inside ``jit``, counted over accepted chunks).
        regrowths: Times a chunk overflowed and was redone with larger capacities.
        spec: The current :class:`~eqx_mp.neighbours.FixedListSpec`.
        compile_seconds: Wall time of the first chunk of each new shape (compilation + run).
    """

    def __init__(self, model: Any, positions: Any, numbers: Any, masses: Any,
                 integrator: Integrator, *, cell: Any = None, pbc: Any = None,
                 momenta: Any = None, skin: float = 0.5, cutoff: float | None = None,
                 dtype: Any = None, growth: float = 1.3, seed: int = 0):
        pos, c, p = check_structure(positions, cell, pbc, what="Simulation")
        if isinstance(model, ForceField):
            if cutoff is None:
                raise ValueError("Simulation: a ForceField needs cutoff=... (Å)")
            field, self.dtype = potential_in_dtype(model, dtype, what="Simulation")
            radius = float(cutoff)
        else:
            model.check_numbers(numbers)
            model, self.dtype = potential_in_dtype(model, dtype, what="Simulation")
            field = PotentialForces(model, jnp.asarray(numbers, jnp.int32))
            radius = float(model.cutoff if cutoff is None else cutoff)
        if not skin >= 0:
            raise ValueError(f"Simulation: skin must be >= 0 (Å), got {skin}")
        if integrator.needs_stress and c is None:
            raise ValueError(f"Simulation: {type(integrator).__name__} changes the cell; it "
                             "needs a periodic structure (cell=...)")
        self.field, self.integrator = field, integrator
        self.cutoff, self.skin, self.growth = radius, float(skin), float(growth)
        self.pbc = tuple(bool(x) for x in p)
        self.num_atoms = len(pos)
        self._masses = np.asarray(masses, np.float64).reshape(-1, 1)
        self.masses = jnp.asarray(self._masses, self.dtype)
        cell_array = np.eye(3) if c is None else c
        self.spec = _allocate(pos, self.cutoff + self.skin, c, p, growth)
        self.rebuilds = self.regrowths = self.steps_done = 0
        self.compile_seconds: list[float] = []
        self._shapes: set[tuple[FixedListSpec, int, int]] = set()
        mom = np.zeros_like(pos) if momenta is None else np.asarray(momenta, np.float64)
        self.state = self._start(jnp.asarray(pos, self.dtype), jnp.asarray(mom, self.dtype),
                                 jnp.asarray(cell_array, self.dtype), jax.random.key(seed),
                                 integrator.thermostat_start(self.dtype))

    # -------------------------------------------------------------- state
    def _start(self, positions, momenta, cell, key, thermostat) -> MDState:
        """A fresh list at the given positions, grown until it fits."""
        for _ in range(MAX_REGROWTHS):
            state = start_state(self.field, self.spec, positions, momenta, cell, key,
                                jnp.asarray(self.rebuilds, jnp.int32), thermostat,
                                self.integrator.needs_stress)
            if not bool(state.overflow):
                return state
            self._grow(state)
        raise RuntimeError(f"Simulation: the neighbour list still overflows after "
                           f"{MAX_REGROWTHS} regrowths ({self.spec})")

    def _grow(self, state: MDState) -> None:
        pos = np.asarray(state.overflow_positions, np.float64)
        cell = np.asarray(state.cell, np.float64) if any(self.pbc) else None
        self.spec = self.spec.grow(int(state.num_pairs), pos, cell, growth=self.growth)
        self.regrowths += 1

    @property
    def positions(self) -> np.ndarray:
        """``(N, 3)`` current positions (Å, float64 numpy)."""
        return np.asarray(self.state.positions, np.float64)

    @property
    def momenta(self) -> np.ndarray:
        """``(N, 3)`` current momenta (float64 numpy)."""
        return np.asarray(self.state.momenta, np.float64)

    @property
    def cell(self) -> np.ndarray:
        """``(3, 3)`` current cell (Å; the identity for an isolated structure)."""
        return np.asarray(self.state.cell, np.float64)

    def set_cell(self, cell: Any, *, scale_atoms: bool = True) -> None:
        """Change the cell between chunks (e.g. compress it); the list is rebuilt (and regrown).

        Arguments:
            cell: ``(3, 3)`` new lattice vectors as rows (Å).
            scale_atoms: Move the atoms with the cell (fractional coordinates kept).
        """
        if not any(self.pbc):
            raise ValueError("Simulation.set_cell: the structure is not periodic")
        new = np.asarray(cell, np.float64)
        pos = self.positions
        if scale_atoms:
            pos = pos @ np.linalg.solve(self.cell, new)
        check_structure(pos, new, self.pbc, what="Simulation.set_cell")
        self.state = self._start(jnp.asarray(pos, self.dtype), self.state.momenta,
                                 jnp.asarray(new, self.dtype), self.state.key,
                                 self.state.thermostat)

    # -------------------------------------------------------------- running
    def _chunk(self, num_frames: int, interval: int) -> tuple[MDState, Frames]:
        """One chunk, redone with a grown list until nothing overflowed."""
        start = self.state
        for _ in range(MAX_REGROWTHS):
            new_shape = (self.spec, num_frames, interval) not in self._shapes
            t = time.perf_counter()
            state, frames, overflow = run_chunk(self.field, self.integrator, self.spec, self.skin,
                                                self.masses, start, num_frames, interval)
            if not bool(overflow):
                if new_shape:
                    self._shapes.add((self.spec, num_frames, interval))
                    self.compile_seconds.append(time.perf_counter() - t)
                return state, frames
            self._grow(state)
            start = self._start(start.positions, start.momenta, start.cell, start.key,
                                start.thermostat)
        raise RuntimeError(f"Simulation: a chunk still overflows after {MAX_REGROWTHS} "
                           f"regrowths ({self.spec})")

    def run(self, steps: int, *, interval: int = 10, frames_per_chunk: int = 10,
            callback: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Advance ``steps`` steps; record (and pass to ``callback``) a frame every ``interval``.

        Arguments:
            steps: Steps (if not a multiple of ``interval``, the last frame is at ``steps``).
            interval: Steps per frame.
            frames_per_chunk: Frames per jitted chunk (the host sees the state only between
                chunks).
            callback: Called with each frame's dict (``step``, ``positions``, ``momenta``,
                ``forces``, ``energy``, ``kinetic``, ``thermostat``, ``temperature``, ``cell``,
                ``volume``), in order, after its chunk.

        Returns:
            ``{"energy", "kinetic", "thermostat", "temperature", "volume"}`` arrays of the frames
            (eV, eV, eV, K, Å³ (0 without a cell); ``thermostat`` is the energy of the
            integrator's own variables, so that ``energy + kinetic + thermostat`` is conserved
            without a Langevin thermostat) and ``seconds`` (wall time of the chunks,
            first-compile time included).
        """
        if steps <= 0 or interval <= 0:
            raise ValueError(f"steps ({steps}) and interval ({interval}) must be positive")
        # Chunks of whole frames, then (if steps is not a multiple) one frame of the remainder.
        plan = [(min(frames_per_chunk, f), interval)
                for f in range(steps // interval, 0, -frames_per_chunk)]
        plan += [(1, steps % interval)] if steps % interval else []
        record: dict[str, list[float]] = {"energy": [], "kinetic": [], "thermostat": [],
                                          "temperature": [], "volume": []}
        start = time.perf_counter()
        for k, every in plan:
            state, frames = self._chunk(k, every)
            self.rebuilds = int(state.rebuilds)
            host = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), frames)
            for i in range(k):
                kinetic = self._kinetic(host.momenta[i])
                frame = dict(step=self.steps_done + (i + 1) * every, positions=host.positions[i],
                             momenta=host.momenta[i], forces=host.forces[i],
                             energy=float(host.energy[i]), kinetic=kinetic,
                             thermostat=float(host.thermostat[i]),
                             temperature=2 * kinetic / (3 * self.num_atoms * KB),
                             cell=host.cell[i], volume=self._volume(host.cell[i]))
                for key in record:
                    record[key].append(frame[key])
                if callback is not None:
                    callback(frame)
            self.state, self.steps_done = state, self.steps_done + k * every
        out: dict[str, Any] = {k: np.asarray(v) for k, v in record.items()}
        out["seconds"] = time.perf_counter() - start
        return out

    def _volume(self, cell: np.ndarray) -> float:
        """The cell's volume (Å³), 0 for an isolated structure."""
        return abs(float(np.linalg.det(cell))) if any(self.pbc) else 0.0

    def _kinetic(self, momenta: np.ndarray) -> float:
        """Kinetic energy (eV) in float64 on the host (as ASE computes it from the momenta)."""
        return 0.5 * float(np.sum(momenta**2 / self._masses))

    def thermo(self) -> dict[str, float]:
        """Energy, kinetic energy, thermostat energy (eV), temperature (K) and volume (Å³) of the
        current state.

        Returns:
            ``{"energy", "kinetic", "thermostat", "temperature", "volume"}``.
        """
        kinetic = self._kinetic(self.momenta)
        thermostat = self.integrator.thermostat_energy(self.state, self.masses)
        return dict(energy=float(self.state.energy), kinetic=kinetic,
                    thermostat=float(thermostat),
                    temperature=2 * kinetic / (3 * self.num_atoms * KB),
                    volume=self._volume(self.cell))
