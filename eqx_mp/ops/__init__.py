"""e3x's ``ops``: gathers, indexed reductions, pairwise index lists, safe norms and helpers."""

from . import helpers, indexed, safe
from .helpers import evaluate_derivatives, inverse_softplus
from .indexed import (
    dense_pairwise_indices,
    dense_to_sparse_indices,
    gather_dst,
    gather_src,
    indexed_max,
    indexed_min,
    indexed_softmax,
    indexed_sum,
    sparse_pairwise_indices,
    sparse_to_dense_indices,
)
from .safe import norm, normalize, normalize_and_return_norm

__all__ = [*indexed.__all__, *safe.__all__, *helpers.__all__]
