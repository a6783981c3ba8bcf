"""Indexed operations: gathers, indexed sums, pairwise index helpers (e3x's ``e3x.ops`` names)."""

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
]
