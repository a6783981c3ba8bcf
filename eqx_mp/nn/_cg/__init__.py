"""The one contraction engine of eqx_mp: CG path tables, block contractions, and the fused,
differentiable primitive behind :class:`~eqx_mp.nn.MessagePass`, :class:`~eqx_mp.nn.Tensor` and
:class:`~eqx_mp.nn.FusedTensor` (see :mod:`.program` for the maths, :mod:`.primitive` for the
rules)."""

from .paths import (
    Table, allowed_paths, fused_path_scales, output_parity, parity_entries, tensor_table,
)
from .graph import FlatGraph, flat_graph
from .primitive import bilinear, cg_p, message_pass
from .reductions import pair_logits, weighted_sum

__all__ = [
    "FlatGraph", "Table", "allowed_paths", "bilinear", "cg_p", "flat_graph", "fused_path_scales",
    "message_pass", "output_parity", "pair_logits", "parity_entries", "tensor_table",
    "weighted_sum",
]
