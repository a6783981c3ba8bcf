r"""Equivariant activation functions (e3x's ``e3x.nn.activations``).

Each activation :math:`\sigma` acts on features ``x`` of layout ``... P (L+1)**2 F`` by *gating*:
every irrep of feature channel :math:`f` is multiplied by the same scalar
:math:`g(s_f)`, where :math:`s_f` = ``x[..., 0, 0, f]`` is the (parity-even, degree-0) scalar of
that channel and :math:`g(s) = \sigma(s)/s`. Scalars therefore get exactly :math:`\sigma(s)`, and
because the gate is a rotation-invariant scalar the result is equivariant. The gates are
written so that they are finite (with finite derivatives) at :math:`s = 0`.

As in e3x, ``x`` may be a JAX or NumPy array of a floating-point or integer dtype. Gates that are
integer-valued keep an integer input's dtype (``relu``); the others compute in JAX's default
float, also where e3x fails on integers (``elu``, ``selu``, ``celu``, ``shifted_softplus``,
``bent_identity``) or rounds the gate to the integer dtype (``gelu(..., approximate=False)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Real

from .._checks import Scalar, as_inexact, infer_max_degree, typecheck

__all__ = [
    "bent_identity",
    "celu",
    "elu",
    "gelu",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serf",
    "shifted_softplus",
    "silu",
    "soft_sign",
    "swish",
]

Features = Real[Array, "*batch P D F"]


def _features_precheck(x: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """e3x's layout check (its wording for fewer than 3 axes), then ``x`` as a JAX array."""
    infer_max_degree(
        x, "x", too_few_dims="shape of x must have at least three dimensions, received shape {shape}"
    )
    return dict(x=jnp.asarray(x))


def _gated_linear(g: Callable[[Array], Array], x: Array) -> Array:
    """Multiply all irreps of each channel by ``g`` of that channel's scalar."""
    return g(x[..., 0:1, 0:1, :]) * x


_ARGS = """
    Arguments:
        x: Features of shape ``(*batch, P, (L+1)**2, F)`` with ``P`` 1 or 2 (a JAX or NumPy
            array, floating point or integer).{extra}

    Returns:
        Array of the shape of ``x``; its dtype for floating-point ``x`` (see the module's
        docstring for integers).

    Raises:
        ShapeError: If ``x`` does not have the layout ``... P (L+1)**2 F``.
"""


def _doc(summary: str, extra: str = "") -> str:
    return summary + "\n" + _ARGS.format(extra=extra)


@typecheck(precheck=_features_precheck)
def relu(x: Features) -> Real[Array, "*batch P D F"]:
    g = lambda s: jnp.maximum(jnp.sign(s), 0)
    return _gated_linear(g, x)


relu.__doc__ = _doc(r"Rectified linear unit :math:`\max(x, 0)` (gate: 1 if the scalar is > 0 else 0).")


@typecheck(precheck=_features_precheck)
def leaky_relu(x: Features, negative_slope: Scalar = 0.01) -> Real[Array, "*batch P D F"]:
    g = lambda s: jnp.where(s >= 0, 1, negative_slope)
    return _gated_linear(g, x)


leaky_relu.__doc__ = _doc(
    r"Leaky ReLU: gate 1 for a non-negative scalar, ``negative_slope`` otherwise.",
    "\n        negative_slope: Gate value for negative scalars.",
)


def _quotient_gate(
    s: Array, quotient: Callable[[Array, Array], Array], near_zero: Callable[[Array], Array]
) -> Array:
    """A gate ``quotient(s, s)`` that divides by the scalar ``s``; where ``|s|`` is below ``eps``
    its Taylor series ``near_zero(s)`` (the division is by 1 there, so derivatives stay finite)."""
    s = as_inexact(s)
    not_tiny = jnp.abs(s) > jnp.finfo(s.dtype).eps
    return jnp.where(not_tiny, quotient(s, jnp.where(not_tiny, s, 1)), near_zero(s))


def _exponential_gate(s: Array, alpha: Any, scale: Any) -> Array:
    """ELU-type gate: 1 for ``s > 0``, else ``alpha * expm1(s / scale) / s`` (its Taylor series
    ``alpha / scale * (1 + t/2 + t**2/6)``, ``t = s / scale``, where ``|s|`` is below ``eps``)."""
    s = as_inexact(s)
    not_tiny = jnp.abs(s) > jnp.finfo(s.dtype).eps
    expm1_safe_s = jnp.where(s > 0, 0.0, s)
    div_safe_s = jnp.where(not_tiny, s, 1)
    t = s / scale
    return jnp.where(
        s > 0,
        1,
        jnp.where(
            not_tiny,
            alpha * jnp.expm1(expm1_safe_s / scale) / div_safe_s,
            alpha / scale * (t * t / 6 + t / 2 + 1),
        ),
    )


@typecheck(precheck=_features_precheck)
def elu(x: Features, alpha: Scalar = 1.0) -> Real[Array, "*batch P D F"]:
    return _gated_linear(lambda s: _exponential_gate(s, alpha, 1.0), x)


elu.__doc__ = _doc(
    r"Exponential linear unit :math:`x` for :math:`x > 0`, :math:`\alpha(e^x - 1)` otherwise.",
    "\n        alpha: Scale of the negative part.",
)


@typecheck(precheck=_features_precheck)
def selu(x: Features) -> Real[Array, "*batch P D F"]:
    alpha = 1.6732632423543772
    scale = 1.0507009873554805
    return scale * elu(x, alpha)


selu.__doc__ = _doc(r"Scaled ELU with the self-normalising constants (:math:`\lambda \approx 1.0507`).")


@typecheck(precheck=_features_precheck)
def celu(x: Features, alpha: Scalar = 1.0) -> Real[Array, "*batch P D F"]:
    return _gated_linear(lambda s: _exponential_gate(s, alpha, alpha), x)


celu.__doc__ = _doc(
    r"Continuously differentiable ELU: :math:`\alpha(e^{x/\alpha} - 1)` for :math:`x \le 0`.",
    "\n        alpha: Scale of the negative part.",
)


@typecheck(precheck=_features_precheck)
def silu(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(jax.scipy.special.expit, x)


silu.__doc__ = _doc(r"SiLU / swish :math:`x\,\mathrm{sigmoid}(x)` (gate: the logistic sigmoid).")
swish = silu


@typecheck(precheck=_features_precheck)
def gelu(x: Features, approximate: bool = True) -> Real[Array, "*batch P D F"]:
    def g(s: Array) -> Array:
        s = as_inexact(s)
        if approximate:
            sqrt_2_over_pi = math.sqrt(2 / math.pi)
            return 0.5 * (1.0 + jnp.tanh(sqrt_2_over_pi * (s + 0.044715 * s**3)))
        return jnp.array((jax.lax.erf(s / math.sqrt(2)) + 1) / 2, dtype=s.dtype)

    return _gated_linear(g, x)


gelu.__doc__ = _doc(
    r"Gaussian error linear unit :math:`x\,\Phi(x)` (gate: the normal CDF :math:`\Phi`).",
    "\n        approximate: Use the tanh approximation of :math:`\\Phi`.",
)


@typecheck(precheck=_features_precheck)
def mish(x: Features, fast: bool = True) -> Real[Array, "*batch P D F"]:
    def g(s: Array) -> Array:
        if fast:
            y = jnp.exp(-s)
            z = 2 * y + 1
            return z / (z + 2 * y * y)
        return jnp.tanh(jax.nn.softplus(s))

    return _gated_linear(g, x)


mish.__doc__ = _doc(
    r"Mish :math:`x \tanh(\mathrm{softplus}(x))`.",
    "\n        fast: Use the algebraically simplified (faster) form of the gate.",
)


@typecheck(precheck=_features_precheck)
def serf(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(lambda s: jax.lax.erf(jax.nn.softplus(s)), x)


serf.__doc__ = _doc(r"Serf :math:`x\,\mathrm{erf}(\mathrm{softplus}(x))`.")


@typecheck(precheck=_features_precheck)
def shifted_softplus(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(
        lambda s: _quotient_gate(s, lambda s, d: (jnp.logaddexp(s, 0) - math.log(2)) / d,
                                 lambda s: s / 8 + 1 / 2), x)


shifted_softplus.__doc__ = _doc(r"Shifted softplus :math:`\log(1 + e^x) - \log 2`.")


@typecheck(precheck=_features_precheck)
def hard_tanh(x: Features) -> Real[Array, "*batch P D F"]:
    def g(s: Array) -> Array:
        safe_s = jnp.where(jnp.abs(s) > 0.1, s, 1)
        return jnp.where(s > 1, 1 / safe_s, jnp.where(s < -1, -1 / safe_s, 1))

    return _gated_linear(g, x)


hard_tanh.__doc__ = _doc(r"Hard tanh :math:`\max(-1, \min(1, x))`.")


@typecheck(precheck=_features_precheck)
def soft_sign(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(lambda s: 1 / (jnp.abs(s) + 1), x)


soft_sign.__doc__ = _doc(r"Soft sign :math:`x / (|x| + 1)`.")


@typecheck(precheck=_features_precheck)
def relu6(x: Features) -> Real[Array, "*batch P D F"]:
    def g(s: Array) -> Array:
        safe_s = jnp.where(s > 1, s, 1)
        return jnp.minimum(jnp.maximum(jnp.sign(s), 0), 6.0 / safe_s)

    return _gated_linear(g, x)


relu6.__doc__ = _doc(r"ReLU6 :math:`\min(\max(x, 0), 6)`.")


@typecheck(precheck=_features_precheck)
def hard_silu(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(jax.nn.hard_sigmoid, x)


hard_silu.__doc__ = _doc(r"Hard SiLU / swish :math:`x\,\mathrm{relu6}(x+3)/6`.")
hard_swish = hard_silu


@typecheck(precheck=_features_precheck)
def bent_identity(x: Features) -> Real[Array, "*batch P D F"]:
    return _gated_linear(
        lambda s: _quotient_gate(s, lambda s, d: (jnp.sqrt(s * s + 1) - 1) / (2 * d) + 1,
                                 lambda s: s / 4 + 1), x)


bent_identity.__doc__ = _doc(r"Bent identity :math:`(\sqrt{x^2 + 1} - 1)/2 + x`.")
