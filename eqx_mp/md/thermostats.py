"""Deterministic thermostats and a barostat for the in-JAX engine, step for step as ASE's.

:class:`NoseHooverChain` (NVT) is ASE's ``NoseHooverChainNVT`` and :class:`IsotropicMTKNPT`
(NPT) ASE's ``IsotropicMTKNPT``: Martyna-Klein-Tuckerman chains and the Martyna-Tobias-Klein
barostat, integrated by fourth-order Suzuki-Yoshida splitting. Their variables ride in
``MDState.thermostat``; :meth:`~eqx_mp.md.engine.Integrator.thermostat_energy` gives their
energy, so that potential + kinetic + it is the conserved quantity.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .engine import FS, KB, Integrator

__all__ = ["IsotropicMTKNPT", "NoseHooverChain"]


#: Suzuki-Yoshida fourth-order weights of the thermostat sub-steps (as ASE's NoseHooverChainNVT).
_YOSHIDA = (1 / (2 - 2 ** (1 / 3)), -(2 ** (1 / 3)) / (2 - 2 ** (1 / 3)), 1 / (2 - 2 ** (1 / 3)))


def _chain(x: Array, eta: Array, p_eta: Array, q: Array, excess: Any, kt: float, delta: float,
           loops: int) -> tuple[Array, Array, Array]:
    """``exp(i L_NHC delta)`` of a Nosé-Hoover chain driving ``x`` (ASE's splitting).

    Arguments:
        x: What the first thermostat scales (atomic momenta, or a barostat's momentum).
        eta, p_eta: ``(M,)`` the chain's positions and momenta.
        q: ``(M,)`` the chain's masses.
        excess: ``x -> `` the first thermostat's force (twice the kinetic energy of ``x`` less
            its degrees of freedom times kT).
        kt: kT (eV).
        delta: Duration (ASE time units).
        loops: Sub-steps, each of fourth-order Suzuki-Yoshida splitting.

    Returns:
        ``(x, eta, p_eta)`` after the step.
    """
    m, p = q.shape[0], list(p_eta)

    def kick(j: int, d2: float, d4: float) -> None:
        if j < m - 1:
            p[j] = p[j] * jnp.exp(-d4 * p[j + 1] / q[j + 1])
        force = excess(x) if j == 0 else p[j - 1] ** 2 / q[j - 1] - kt
        p[j] = p[j] + d2 * force
        if j < m - 1:
            p[j] = p[j] * jnp.exp(-d4 * p[j + 1] / q[j + 1])

    for _ in range(loops):
        for weight in _YOSHIDA:
            d = weight * delta / loops
            for j in reversed(range(m)):
                kick(j, d / 2, d / 4)
            eta = eta + d * jnp.stack(p) / q
            x = x * jnp.exp(-d * p[0] / q[0])
            for j in range(m):
                kick(j, d / 2, d / 4)
    return x, eta, jnp.stack(p)


def _chain_masses(dof: int, kt: float, tau: float, length: int, dtype: Any) -> Array:
    """``(length,)`` chain masses: ``dof kT tau²`` for the first, ``kT tau²`` for the rest."""
    return jnp.asarray([dof * kt * tau**2] + [kt * tau**2] * (length - 1), dtype)


def _chain_energy(x: Array, p: Array, q: Array, dof: int, kt: float) -> Array:
    """A chain's energy: ``dof kT x_1 + kT Σ_{j>1} x_j + Σ p_j² / 2 q_j``."""
    return dof * kt * x[0] + kt * jnp.sum(x[1:]) + jnp.sum(0.5 * p**2 / q)


class NoseHooverChain(Integrator):
    """Nosé-Hoover chain thermostat (NVT, deterministic), step for step as ASE's
    ``NoseHooverChainNVT`` (Martyna, Klein and Tuckerman 1992; Tuckerman et al. 2006).

    A step is the chain's half step, velocity Verlet, and the chain's half step; each chain half
    step is ``loops`` sub-steps of fourth-order Suzuki-Yoshida splitting. The chain has
    ``chain`` thermostats of masses ``Q_1 = 3 N kT tdamp²`` and ``Q_j = kT tdamp²``. The
    dynamics conserve potential + kinetic + :meth:`thermostat_energy`.

    Arguments:
        timestep: Time step (fs).
        temperature: Thermostat temperature (K).
        tdamp: The thermostat's time scale (fs); about 100 time steps is usual.
        chain: Number of thermostats in the chain (>= 1).
        loops: Sub-steps of each chain half step (>= 1).

    Example::

        sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(),
                         NoseHooverChain(2.0, temperature=600.0, tdamp=200.0),
                         cell=atoms.cell.array, momenta=atoms.get_momenta())
        out = sim.run(5000, interval=10)
        conserved = out["energy"] + out["kinetic"] + out["thermostat"]
    """

    timestep: float
    temperature: float
    tdamp: float
    chain: int = eqx.field(default=3, static=True)
    loops: int = eqx.field(default=1, static=True)

    def __check_init__(self):
        if not (self.timestep > 0 and self.temperature > 0 and self.tdamp > 0):
            raise ValueError(f"NoseHooverChain: timestep, temperature and tdamp must be > 0, got "
                             f"{self.timestep}, {self.temperature} and {self.tdamp}")
        if self.chain < 1 or self.loops < 1:
            raise ValueError(f"NoseHooverChain: chain and loops must be >= 1, got {self.chain} "
                             f"and {self.loops}")

    def thermostat_start(self, dtype):
        return jnp.zeros((2, self.chain), dtype)

    def _masses(self, num_atoms: int, dtype: Any) -> Array:
        return _chain_masses(3 * num_atoms, KB * self.temperature, self.tdamp * FS, self.chain,
                             dtype)

    def thermostat_energy(self, state, masses):
        n = masses.shape[0]
        eta, p_eta = state.thermostat
        return _chain_energy(eta, p_eta, self._masses(n, p_eta.dtype), 3 * n, KB * self.temperature)

    def _chain_half_step(self, momenta: Array, thermostat: Array, masses: Array,
                         delta: float) -> tuple[Array, Array]:
        """``exp(i L_NHC delta)``: the chain and the momenta it scales."""
        n, kt = masses.shape[0], KB * self.temperature
        q = self._masses(n, momenta.dtype)
        momenta, eta, p_eta = _chain(momenta, thermostat[0], thermostat[1], q,
                                     lambda p: jnp.sum(p**2 / masses) - 3 * n * kt, kt, delta,
                                     self.loops)
        return momenta, jnp.stack([eta, p_eta])

    def step(self, state, masses, forces_at):
        dt = self.timestep * FS
        p, chain = self._chain_half_step(state.momenta, state.thermostat, masses, dt / 2)
        p = p + 0.5 * dt * state.forces
        state = forces_at(state._replace(positions=state.positions + dt * p / masses, momenta=p))
        p = state.momenta + 0.5 * dt * state.forces
        p, chain = self._chain_half_step(p, chain, masses, dt / 2)
        return state._replace(momenta=p, thermostat=chain)


def _exprel(x: Array) -> Array:
    """``(exp(x) - 1) / x``, 1 at 0 (scipy's ``exprel``)."""
    small = jnp.abs(x) < 1e-8
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 + 0.5 * x, jnp.expm1(safe) / safe)


class IsotropicMTKNPT(Integrator):
    """Isothermal-isobaric dynamics (NPT) with isotropic volume changes: the Martyna-Tobias-Klein
    barostat with Nosé-Hoover chains on the atoms and on the barostat, step for step as ASE's
    ``IsotropicMTKNPT`` (periodic structures only).

    The cell is scaled by ``exp(eps)``; ``eps`` and its momentum (mass
    ``W = (3N + 3) kT pdamp²``) and the barostat's chain (masses ``9 kT pdamp²`` and
    ``kT pdamp²``) ride in ``MDState.thermostat`` after the atoms' chain. The dynamics conserve
    potential + kinetic + :meth:`thermostat_energy` (the chains, the barostat's kinetic energy
    and ``P V``).

    Arguments:
        timestep: Time step (fs).
        temperature: Target temperature (K).
        pressure: External pressure (eV/Å³; ``ase.units.GPa`` is 1 GPa).
        tdamp: The thermostat's time scale (fs; about 100 time steps).
        pdamp: The barostat's time scale (fs; about 1000 time steps).
        tchain, pchain: Lengths of the thermostat's and the barostat's chains (>= 1).
        tloop, ploop: Sub-steps of their half steps (>= 1).

    Example::

        from ase.units import GPa

        sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(),
                         IsotropicMTKNPT(2.0, temperature=600.0, pressure=1.0 * GPa,
                                         tdamp=200.0, pdamp=2000.0),
                         cell=atoms.cell.array, momenta=atoms.get_momenta())
        out = sim.run(5000, interval=10)
        out["volume"], sim.cell  # the cell follows the pressure
    """

    timestep: float
    temperature: float
    pressure: float
    tdamp: float
    pdamp: float
    tchain: int = eqx.field(default=3, static=True)
    pchain: int = eqx.field(default=3, static=True)
    tloop: int = eqx.field(default=1, static=True)
    ploop: int = eqx.field(default=1, static=True)
    needs_stress: ClassVar[bool] = True

    def __check_init__(self):
        if not (self.timestep > 0 and self.temperature > 0 and self.tdamp > 0
                and self.pdamp > 0):
            raise ValueError(f"IsotropicMTKNPT: timestep, temperature, tdamp and pdamp must be "
                             f"> 0, got {self.timestep}, {self.temperature}, {self.tdamp} and "
                             f"{self.pdamp}")
        if min(self.tchain, self.pchain, self.tloop, self.ploop) < 1:
            raise ValueError("IsotropicMTKNPT: tchain, pchain, tloop and ploop must be >= 1")

    def thermostat_start(self, dtype):
        return jnp.zeros((2, self.tchain + self.pchain + 1), dtype)

    @property
    def _atoms(self) -> NoseHooverChain:
        """The atoms' thermostat: a Nosé-Hoover chain (its variables are the first ``tchain``)."""
        return NoseHooverChain(self.timestep, self.temperature, self.tdamp, self.tchain,
                               self.tloop)

    def _barostat(self, num_atoms: int, dtype: Any) -> tuple[float, Array, float]:
        """``kT``, the barostat's chain masses and the barostat's mass ``W``."""
        kt, tau = KB * self.temperature, self.pdamp * FS
        return kt, _chain_masses(9, kt, tau, self.pchain, dtype), (3 * num_atoms + 3) * kt * tau**2

    def thermostat_energy(self, state, masses):
        kt, r, w = self._barostat(masses.shape[0], state.momenta.dtype)
        t, b = self.tchain, self.pchain
        x, p = state.thermostat
        atoms = self._atoms.thermostat_energy(state._replace(thermostat=state.thermostat[:, :t]),
                                              masses)
        baro = _chain_energy(x[t:t + b], p[t:t + b], r, 1, kt)
        volume = jnp.abs(jnp.linalg.det(state.cell))
        return atoms + baro + 0.5 * p[-1] ** 2 / w + self.pressure * volume

    def step(self, state, masses, forces_at):
        n, dt = masses.shape[0], self.timestep * FS
        kt, r, w = self._barostat(n, state.momenta.dtype)
        t, b = self.tchain, self.pchain
        x, pv = state.thermostat
        atoms, xi, p_xi = state.thermostat[:, :t], x[t:t + b], pv[t:t + b]
        eps, p_eps = x[-1], pv[-1]

        def baro_chain(p_eps, xi, p_xi):
            return _chain(p_eps, xi, p_xi, r, lambda pe: pe**2 / w - kt, kt, dt / 2, self.ploop)

        def atom_chain(p, atoms):
            return self._atoms._chain_half_step(p, atoms, masses, dt / 2)

        def cell_kick(s, p, p_eps):  # exp(i L_eps,2 dt/2), the pressure of s with momenta p
            volume = jnp.abs(jnp.linalg.det(s.cell))
            twice_kinetic = jnp.sum(p**2 / masses)
            pressure = -jnp.sum(s.stress[:3]) / 3 + twice_kinetic / (3 * volume)
            return p_eps + 0.5 * dt * (3 * volume * (pressure - self.pressure) + twice_kinetic / n)

        def atom_kick(s, p, p_eps):  # exp(i L_2 dt/2)
            y = (1 + 1 / n) * p_eps * 0.5 * dt / w
            return p * jnp.exp(-y) + 0.5 * dt * s.forces * _exprel(-y)

        p_eps, xi, p_xi = baro_chain(p_eps, xi, p_xi)
        p, atoms = atom_chain(state.momenta, atoms)
        p_eps = cell_kick(state, p, p_eps)
        p = atom_kick(state, p, p_eps)
        y = dt * p_eps / w
        positions = state.positions * jnp.exp(y) + p * dt / masses * _exprel(y)
        eps = eps + y
        state = forces_at(state._replace(positions=positions, momenta=p,
                                         cell=state.cell * jnp.exp(y)))
        p = atom_kick(state, state.momenta, p_eps)
        p_eps = cell_kick(state, p, p_eps)
        p, atoms = atom_chain(p, atoms)
        p_eps, xi, p_xi = baro_chain(p_eps, xi, p_xi)
        chain = jnp.concatenate([atoms, jnp.stack([xi, p_xi]), jnp.stack([eps, p_eps])[:, None]],
                                axis=1)
        return state._replace(momenta=p, thermostat=chain)
