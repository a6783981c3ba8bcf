"""Interoperability with e3x/flax (needs the optional ``e3x`` extra: ``pip install eqx_mp[e3x]``).

flax and e3x are imported lazily, only when these functions are called. JAX-MD interop lives in
:mod:`eqx_mp.interop.jax_md` (the ``md`` extra), imported only when that module is.
"""

from .e3x import from_e3x, to_e3x
from .potential import potential_to_e3x

__all__ = ["from_e3x", "potential_to_e3x", "to_e3x"]
