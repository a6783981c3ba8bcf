"""e3x's ``ops``: gathers, indexed reductions, pairwise index lists, safe norms and helpers."""

from . import helpers, indexed, safe
from .helpers import evaluate_derivatives as evaluate_derivatives
from .helpers import inverse_softplus as inverse_softplus
from .indexed import dense_pairwise_indices as dense_pairwise_indices
from .indexed import dense_to_sparse_indices as dense_to_sparse_indices
from .indexed import gather_dst as gather_dst
from .indexed import gather_src as gather_src
from .indexed import indexed_max as indexed_max
from .indexed import indexed_min as indexed_min
from .indexed import indexed_softmax as indexed_softmax
from .indexed import indexed_sum as indexed_sum
from .indexed import sparse_pairwise_indices as sparse_pairwise_indices
from .indexed import sparse_to_dense_indices as sparse_to_dense_indices
from .safe import norm as norm
from .safe import normalize as normalize
from .safe import normalize_and_return_norm as normalize_and_return_norm

__all__ = [*indexed.__all__, *safe.__all__, *helpers.__all__]
