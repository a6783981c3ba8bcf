"""Molecular dynamics with a trained potential: inside ``jit`` or through ASE.

* :class:`Simulation` (the in-JAX engine, :mod:`eqx_mp.md.engine`): velocity Verlet (NVE),
  Langevin BAOAB or a Nosé-Hoover chain (NVT), or the isotropic MTK barostat (NPT) steps as a
  ``lax.scan``, in chunks that return to the host only to
  write frames; a fixed-capacity neighbour list with a skin, rebuilt inside ``jit``, regrown
  (and the chunk redone) when it overflows. :func:`run_jax_md` runs it on an ``ase.Atoms``.
* :func:`run_md`: ASE's integrators with :class:`eqx_mp.calculator.Calculator`.

Command line (needs ASE and the ``train`` extra)::

    python -m eqx_mp.md --model runs/latest [--engine jax|ase] [--structure FILE | bulk:INDEX]
        [--supercell 4,4,4] [--ensemble nve|langevin|nose-hoover|npt] [--temperature K]
        [--pressure GPA] [--timestep FS] [--steps N] [--output DIR]

It writes ``DIR/md.traj`` (or ``md.extxyz``; every ``--interval`` steps), ``DIR/energies.png``
(potential, kinetic and total energy per atom against time), ``DIR/md.json`` (settings, energy
series, drift, atom-steps/s, neighbour-list builds and regrowths) and prints the total-energy
drift in meV/atom/ps (the slope of a linear fit of the total energy per atom against time).
"""

from ._ase import default_structure as default_structure
from ._ase import run_md as run_md
from ._ase import summarise as summarise
from ._cli import build_parser as build_parser
from ._cli import main as main
from ._jax import run_jax_md as run_jax_md
from ._plot import plot_energies as plot_energies
from ._simulation import Simulation as Simulation
from .engine import Langevin as Langevin
from .engine import VelocityVerlet as VelocityVerlet
from .thermostats import IsotropicMTKNPT as IsotropicMTKNPT
from .thermostats import NoseHooverChain as NoseHooverChain

__all__ = ["IsotropicMTKNPT", "Langevin", "NoseHooverChain", "Simulation", "VelocityVerlet",
           "build_parser", "default_structure", "main", "plot_energies", "run_jax_md", "run_md",
           "summarise"]
