"""Embedding of integers (e.g. atomic numbers) as scalar features (e3x's ``Embed``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Integer

from .._checks import AnyArray, ShapeError, check_array, check_int, typecheck

__all__ = ["Embed", "default_embed_init"]

#: e3x's (and flax's) default embedding initialiser: unit-variance normal, fan-in along axis 0
#: excluded (``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``).
default_embed_init = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


class Embed(eqx.Module):
    """A learnable map from integers ``[0, num_embeddings)`` to ``features`` scalar features.

    The output has e3x's scalar layout ``... 1 1 features`` (one parity, degree 0 only), ready to
    be used with :class:`Dense`, :class:`MessagePass` and the equivariant activations.

    Arguments:
        num_embeddings: Number of embeddings ``n`` (valid inputs are ``0 .. n-1``).
        features: Feature dimension ``d``.
        dtype: dtype of the output (``None``: the parameter dtype).
        param_dtype: dtype of the ``embedding`` parameter (default ``float32``, as in e3x).
        embedding_init: Initialiser ``init(key, shape, dtype)`` (default: e3x's
            ``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``).
        key: A ``jax.random`` key for the initialiser (keyword-only).

    Attributes:
        embedding: Parameter of shape ``(num_embeddings, 1, 1, features)`` (e3x's shape).
    """

    embedding: Float[Array, "num_embeddings 1 1 features"]
    num_embeddings: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)

    def __init__(
        self,
        num_embeddings: int,
        features: int,
        *,
        dtype: Any | None = None,
        param_dtype: Any = jnp.float32,
        embedding_init: Callable[..., Array] = default_embed_init,
        key: Array,
    ):
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", minimum=1)
        self.features = check_int(features, "features", minimum=1)
        self.dtype = dtype
        shape = (self.num_embeddings, 1, 1, self.features)
        embedding = jnp.asarray(embedding_init(key, shape, param_dtype))
        if embedding.shape != shape:
            raise ShapeError(
                f"embedding_init returned shape {embedding.shape}, expected {shape} "
                f"(num_embeddings, 1, 1, features)"
            )
        self.embedding = embedding

    def __check_init__(self) -> None:
        shape = (self.num_embeddings, 1, 1, self.features)
        if tuple(self.embedding.shape) != shape:
            raise ShapeError(
                f"Embed.embedding has shape {tuple(self.embedding.shape)}, expected {shape}"
            )

    def _precheck(self, inputs: Any) -> None:
        check_array(inputs, "inputs", dtype="integer")

    @typecheck(precheck=_precheck)
    def __call__(
        self, inputs: Integer[AnyArray, "*batch"]
    ) -> Float[Array, "*batch 1 1 {self.features}"]:
        """Look up the embedding of every integer in ``inputs``.

        Arguments:
            inputs: Integer array of any shape ``*batch`` with values in
                ``[0, num_embeddings)``. As in e3x (``jnp.take``), negative indices count from
                the end and indices ``>= num_embeddings`` give NaN embeddings.

        Returns:
            Array of shape ``(*batch, 1, 1, features)`` and dtype ``dtype`` (or the parameter
            dtype).

        Raises:
            ShapeError: (a ``ValueError``) if ``inputs`` is not an integer array.
        """
        embedding = self.embedding
        if self.dtype is not None:
            embedding = embedding.astype(self.dtype)
        return jnp.take(embedding, jnp.asarray(inputs), axis=0)
