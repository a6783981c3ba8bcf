"""eqx_mp: e3x-style E(3)-equivariant message passing as Equinox modules.

Subpackages: :mod:`eqx_mp.so3` (CG, spherical harmonics, Wigner-D, rotations), :mod:`eqx_mp.nn`
(modules, radial functions, cutoffs, activations, basis), :mod:`eqx_mp.ops` (gathers, indexed
sums), :mod:`eqx_mp.batching` / :mod:`eqx_mp.parallel` (padded graph batches, sharding),
:mod:`eqx_mp.neighbours` (periodic neighbour lists), :mod:`eqx_mp.io` (save/load),
:mod:`eqx_mp.interop` (e3x conversion; optional extra), :mod:`eqx_mp.config` (:class:`Config`,
e3x's global defaults). Not imported here: :mod:`eqx_mp.data`, :mod:`eqx_mp.models`,
:mod:`eqx_mp.calculator` (ASE), :mod:`eqx_mp.md` (ASE), ``eqx_mp.train``.
"""

from importlib import metadata as _metadata

from . import _xla_flags

_xla_flags.apply()  # before anything starts a JAX backend (see eqx_mp._xla_flags)

from . import batching, config, io, neighbours, nn, ops, parallel, so3
from ._checks import ShapeError
from .config import Config
from .nn import Dense, FusedTensor, MessagePass, Tensor

#: The installed distribution's version (one source: ``version`` in pyproject.toml).
__version__ = _metadata.version("eqx_mp")

__all__ = [
    "so3", "nn", "ops", "neighbours", "batching", "parallel", "io", "config", "Config",
    "ShapeError",
    "Dense", "Tensor", "FusedTensor", "MessagePass", "__version__",
]
