"""eqx_mp: e3x-style E(3)-equivariant message passing as Equinox modules."""

from . import so3
from ._typing import ShapeError

__version__ = "0.1.0"

__all__ = ["so3", "ShapeError", "__version__"]
