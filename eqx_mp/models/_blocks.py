"""The parts a :class:`~eqx_mp.models.Potential` block adds to e3x's: higher body order, radial MLP.

:class:`SelfProducts` raises the body order of the aggregated messages of one block the way MACE
does, with e3x's layers: products of the features with themselves (``Tensor``, e3x's way),
``A``, ``A ⊗ A``, ``(A ⊗ A) ⊗ A`` up to the correlation order, each weighted per element and
feature, then summed. Two-body messages ``A`` become up to ``correlation + 1``-body features in one
block. :class:`RadialMLP` turns the fixed radial functions into learned filters.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Integer

from .. import nn
from .._checks import check_int

__all__ = ["RadialMLP", "SelfProducts"]


class SelfProducts(eqx.Module):
    """``Σ_ν w_ν[Z] ∘ A^(ν)`` with ``A^(1) = A`` and ``A^(ν) = Tensor(Dense(A^(ν-1)), Dense(A))``.

    Every product is equivariant (Clebsch-Gordan coupling, no pseudotensors: parity axis 1), so
    the sum is; the per-element weights ``w_ν[Z]`` are scalars (e3x's ``Embed``).

    Arguments:
        features: Feature channels ``F``.
        max_degree: Maximum degree ``L`` of the input and the output.
        correlation: Highest power ``ν`` of ``A`` (1: ``A`` itself only).
        num_embeddings: Number of elements the weights cover (``max_atomic_number + 1``).
        key: A JAX PRNG key.
    """

    left: tuple[nn.Dense, ...]
    right: tuple[nn.Dense, ...]
    tensors: tuple[nn.Tensor, ...]
    weights: tuple[nn.Embed, ...]
    features: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    correlation: int = eqx.field(static=True)
    num_embeddings: int = eqx.field(static=True)

    def __init__(self, features: int, max_degree: int, correlation: int, num_embeddings: int,
                 *, key: Array):
        self.features, self.max_degree = features, max_degree
        self.correlation = check_int(correlation, "correlation", minimum=1)
        self.num_embeddings = num_embeddings
        keys = jax.random.split(key, 3 * self.correlation)
        left, right, tensors = [], [], []
        for i in range(self.correlation - 1):
            left.append(nn.Dense(features, features, max_degree, parity=1, use_bias=False,
                                 key=keys[3 * i]))
            right.append(nn.Dense(features, features, max_degree, parity=1, use_bias=False,
                                  key=keys[3 * i + 1]))
            tensors.append(nn.Tensor(features, max_degree, max_degree, parity1=1, parity2=1,
                                     max_degree=max_degree, include_pseudotensors=False,
                                     key=keys[3 * i + 2]))
        self.left, self.right, self.tensors = tuple(left), tuple(right), tuple(tensors)
        ones = jax.nn.initializers.ones
        self.weights = tuple(nn.Embed(num_embeddings, features, embedding_init=ones,
                                      key=keys[-1]) for _ in range(self.correlation))

    def __call__(
        self, a: Float[Array, "N 1 D F"], numbers: Integer[Array, " N"]
    ) -> Float[Array, "N 1 D F"]:
        """The element-weighted sum of the powers of ``a``.

        Arguments:
            a: ``(N, 1, (L+1)**2, F)`` aggregated messages.
            numbers: ``(N,)`` atomic numbers.

        Returns:
            ``(N, 1, (L+1)**2, F)`` features of body order up to ``correlation + 1``.
        """
        power, out = a, self.weights[0](numbers) * a
        for left, right, tensor, w in zip(self.left, self.right, self.tensors, self.weights[1:]):
            power = tensor(left(power), right(a))
            out = out + w(numbers) * power
        return out


class RadialMLP(eqx.Module):
    """A learned filter on the radial functions: ``K -> H -> silu -> K`` (e3x's ``Dense``).

    Arguments:
        num_basis: Number of radial functions ``K``.
        hidden: Hidden width ``H``.
        key: A JAX PRNG key.
    """

    dense_in: nn.Dense
    dense_out: nn.Dense
    num_basis: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)

    def __init__(self, num_basis: int, hidden: int, *, key: Array):
        self.num_basis, self.hidden = num_basis, hidden
        k1, k2 = jax.random.split(key)
        self.dense_in = nn.Dense(num_basis, hidden, 0, parity=1, key=k1)
        self.dense_out = nn.Dense(hidden, num_basis, 0, parity=1, key=k2)

    def __call__(self, rbf: Float[Array, "*batch K"]) -> Float[Array, "*batch K"]:
        """Filter the radial functions.

        Arguments:
            rbf: ``(*batch, K)`` radial function values.

        Returns:
            ``(*batch, K)`` filtered values.
        """
        x = rbf[..., None, None, :]
        return self.dense_out(nn.silu(self.dense_in(x)))[..., 0, 0, :]


def filtered(radial_fn: Any, mlp: RadialMLP | None) -> Any:
    """``radial_fn`` followed by ``mlp`` (``radial_fn`` itself without one).

    Arguments:
        radial_fn: ``(r, num) -> (*r.shape, num)`` radial functions.
        mlp: The filter, or ``None``.

    Returns:
        A radial function with the same signature.
    """
    if mlp is None:
        return radial_fn
    return lambda r, num, **kw: mlp(radial_fn(r, num, **kw))


def zeros_like_arrays(module: Any) -> Any:
    """The module with every floating-point array set to zero.

    Arguments:
        module: Any pytree.

    Returns:
        The same structure with zero floating arrays.
    """
    return jax.tree_util.tree_map(
        lambda a: jnp.zeros_like(a) if eqx.is_inexact_array(a) else a, module)
