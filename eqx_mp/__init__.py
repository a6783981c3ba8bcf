"""eqx_mp: e3x-style E(3)-equivariant message passing as Equinox modules."""

from . import nn, ops, so3
from ._typing import ShapeError
from .nn import Dense, FusedTensor, MessagePass, Tensor

__version__ = "0.1.0"

__all__ = ["so3", "nn", "ops", "ShapeError", "Dense", "Tensor", "FusedTensor", "MessagePass", "__version__"]
