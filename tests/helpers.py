"""Small helpers shared by the tests of the e3x parity modules (TensorDense, attention)."""

from __future__ import annotations

import e3x  # noqa: F401  (the helpers are only used with e3x installed)
import jax
import jax.numpy as jnp
import numpy as np

from eqx_mp.interop import from_e3x

TOL = {"float32": 2e-5, "float64": 1e-12}


def e3x_twin(module, args, kwargs=None, *, dtype="float32", seed=0):
    """Initialise an e3x module, replace its parameters by seeded random values of ``dtype`` (so
    that biases and every kernel are nonzero) and convert it with ``from_e3x``.

    Returns:
        ``(variables, eqx_module)`` with identical weights.
    """
    kwargs = kwargs or {}
    variables = module.init(jax.random.key(seed), *args, **kwargs)
    rng = np.random.default_rng(seed)
    variables = jax.tree_util.tree_map(
        lambda a: jnp.asarray(0.5 * rng.normal(size=a.shape), dtype), variables
    )
    return variables, from_e3x(module, variables, *args, **kwargs)


def trees_equal(a, b) -> bool:
    """Same structure, shapes, dtypes and bit-identical values."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b) or len(la) != len(lb):
        return False
    return all(
        x.shape == y.shape and x.dtype == y.dtype and bool(jnp.all(x == y)) for x, y in zip(la, lb)
    )


def assert_close(actual, desired, dtype):
    """``assert_allclose`` with the dtype's tolerance relative to the largest magnitude."""
    tol = TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(np.asarray(desired)))))
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=tol, atol=tol * scale)


def rotate_features(x, rot, reflect=False):
    """Rotate (and optionally reflect) features ``... P (L+1)**2 F`` with e3x's conventions."""
    from eqx_mp import nn, so3

    max_degree = int(round(np.sqrt(x.shape[-2]))) - 1
    y = nn.rotate(x, so3.wigner_d(rot, max_degree))
    return nn.reflect(y) if reflect else y
