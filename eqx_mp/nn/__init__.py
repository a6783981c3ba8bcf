"""Equivariant neural-network modules and functions (e3x's ``e3x.nn`` names)."""

from . import functions, initializers
from .activations import (
    bent_identity,
    celu,
    elu,
    gelu,
    hard_silu,
    hard_swish,
    hard_tanh,
    leaky_relu,
    mish,
    relu,
    relu6,
    selu,
    serf,
    shifted_softplus,
    silu,
    soft_sign,
    swish,
)
from .attention import MultiHeadAttention, SelfAttention
from .basis import ExponentialBasis, basis
from .dense import Dense
from .embed import Embed
from .features import (
    add,
    change_max_degree_or_type,
    even_degree_mask,
    odd_degree_mask,
    reflect,
    rotate,
)
from .functions import (
    basic_bernstein,
    basic_chebyshev,
    basic_fourier,
    basic_gaussian,
    cosine_cutoff,
    exponential_bernstein,
    exponential_chebyshev,
    exponential_fourier,
    exponential_gaussian,
    exponential_mapping,
    reciprocal_bernstein,
    reciprocal_chebyshev,
    reciprocal_fourier,
    reciprocal_gaussian,
    reciprocal_mapping,
    rectangular_window,
    sinc,
    smooth_cutoff,
    smooth_damping,
    smooth_switch,
    smooth_window,
    triangular_window,
)
from .fused_tensor import FusedTensor
from .message_pass import MessagePass
from .tensor import Tensor
from .tensor_dense import TensorDense
from .tensor_product import AbstractTensorProduct

__all__ = [
    "AbstractTensorProduct", "Dense", "Embed", "ExponentialBasis", "FusedTensor",
    "MessagePass", "MultiHeadAttention", "SelfAttention", "Tensor", "TensorDense", "add",
    "basic_bernstein", "basic_chebyshev", "basic_fourier", "basic_gaussian", "basis",
    "bent_identity", "celu", "change_max_degree_or_type", "cosine_cutoff", "elu",
    "even_degree_mask", "exponential_bernstein", "exponential_chebyshev",
    "exponential_fourier", "exponential_gaussian", "exponential_mapping", "functions", "gelu",
    "hard_silu", "hard_swish", "hard_tanh", "initializers", "leaky_relu", "mish",
    "odd_degree_mask", "reciprocal_bernstein", "reciprocal_chebyshev", "reciprocal_fourier",
    "reciprocal_gaussian", "reciprocal_mapping", "rectangular_window", "reflect", "relu",
    "relu6", "rotate", "selu", "serf", "shifted_softplus", "silu", "sinc", "smooth_cutoff",
    "smooth_damping", "smooth_switch", "smooth_window", "soft_sign", "swish",
    "triangular_window",
]
