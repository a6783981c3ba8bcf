"""e3x's ``ops``: gathers, indexed reductions, pairwise index lists, safe norms and helpers."""

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

__all__ = [
    "gather_src",
    "gather_dst",
    "indexed_sum",
    "indexed_min",
    "indexed_max",
    "indexed_softmax",
    "dense_pairwise_indices",
    "sparse_pairwise_indices",
    "dense_to_sparse_indices",
    "sparse_to_dense_indices",
    "norm",
    "normalize",
    "normalize_and_return_norm",
    "inverse_softplus",
    "evaluate_derivatives",
]
