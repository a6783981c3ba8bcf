"""Helpers shared by several test files (imported as ``from helpers import ...``)."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: A tiny Potential for training tests (compiles in seconds).
TINY_MODEL = dict(features=4, max_degree=1, num_basis=4, num_iterations=1, correlation=1, radial_mlp=0)


def jaxtyping_hook_installed() -> bool:
    """Whether pytest runs with ``--jaxtyping-packages=eqx_mp,...``: jaxtyping's import hook then
    checks the annotations of every function in eqx_mp before our explicit checks run, so the
    error is jaxtyping's, naming the parameter."""
    return any(type(f).__name__ == "_JaxtypingFinder" for f in sys.meta_path)


def random_rotation(seed: int, reflect: bool = False) -> np.ndarray:
    """A random orthogonal matrix (numpy QR): a proper rotation, or one times -1 if ``reflect``."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return -q if reflect else q


@contextlib.contextmanager
def enable_x64():
    """Run a block with ``jax_enable_x64`` on (restored afterwards)."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


def brute_force_pairs(positions, cutoff, cell=None, pbc=None) -> set[tuple[int, ...]]:
    """Every ``(dst, src, s0, s1, s2)`` with ``|x[src] - x[dst] + s @ cell| < cutoff`` (no self pair).

    Loops over enough images along each periodic axis for any positions (also unwrapped ones).
    """
    pos = np.asarray(positions, np.float64)
    if cell is None:
        cell, pbc = np.eye(3), np.zeros(3, bool)
    cell = np.asarray(cell, np.float64)
    pbc = np.broadcast_to(np.asarray(True if pbc is None else pbc), (3,))
    inv = np.linalg.inv(cell)
    spacing = 1.0 / np.linalg.norm(inv, axis=0)
    frac = pos @ inv
    span = frac.max(0) - frac.min(0) if len(pos) else np.zeros(3)
    reach = [int(np.ceil(cutoff / spacing[k] + span[k])) + 1 if pbc[k] else 0 for k in range(3)]
    out = set()
    for s in itertools.product(*(range(-m, m + 1) for m in reach)):
        r = pos[None, :, :] - pos[:, None, :] + np.asarray(s, np.float64) @ cell
        for i, j in zip(*np.nonzero(np.linalg.norm(r, axis=-1) < cutoff)):
            if i != j or any(s):
                out.add((int(i), int(j), *s))
    return out


def pair_set(dst, src, shifts, num_atoms: int) -> set[tuple[int, ...]]:
    """The set of ``(dst, src, s0, s1, s2)`` of a (possibly padded) neighbour list."""
    dst, src, shifts = np.asarray(dst), np.asarray(src), np.asarray(shifts)
    keep = dst < num_atoms
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(dst[keep], src[keep], shifts[keep])}


def perturbed(model, scale: float = 0.3, seed: int = 2, dtype=None):
    """``model`` with Gaussian noise added to every float leaf (so every layer matters)."""
    leaves, treedef = jax.tree_util.tree_flatten(eqx.filter(model, eqx.is_inexact_array))
    rng = np.random.default_rng(seed)
    noisy = [jnp.asarray(np.asarray(x, np.float64) + scale * rng.normal(size=x.shape),
                         dtype or x.dtype) for x in leaves]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, noisy), model)


def run_train_cli(
    *args: str, cache: Path | None = None, timeout: float = 300, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run ``python -m eqx_mp.train ARGS`` in a fresh process (from the repository root).

    Arguments:
        *args: Command-line arguments.
        cache: A JAX persistent compilation cache directory shared between processes (saves
            compiling the same step twice); ``None`` for none.
        timeout: Seconds before the process is killed (``wait=True`` only).
        wait: Wait for it (``CompletedProcess`` with captured text output) or return the running
            ``Popen`` (output discarded).

    Returns:
        The finished or the running process.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if cache is not None:  # share compiled executables between the processes
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    cmd = [sys.executable, "-m", "eqx_mp.train", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def tiny_potential(key: int = 1, scale: float = 0.2, seed: int = 3, energy_scale: float = 1.0, **kw):
    """A small eqx_mp Potential (F=8, L=1, K=6, cutoff 4 Å, Z <= 80) with perturbed weights."""
    from eqx_mp.models import Potential

    m = perturbed(Potential(features=8, max_degree=1, num_basis=6, cutoff=4.0,
                            max_atomic_number=80, key=jax.random.key(key), **kw),
                  scale=scale, seed=seed)
    return eqx.tree_at(lambda p: p.energy_scale, m, energy_scale * m.energy_scale)


# --- e3x parity modules (TensorDense, attention): e3x twins and comparisons ---

TOL = {"float32": 2e-5, "float64": 1e-12}


def e3x_twin(module, args, kwargs=None, *, dtype="float32", seed=0):
    """Initialise an e3x module, replace its parameters by seeded random values of ``dtype`` (so
    that biases and every kernel are nonzero) and convert it with ``from_e3x``.

    Returns:
        ``(variables, eqx_module)`` with identical weights.
    """
    from eqx_mp.interop import from_e3x

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


def assert_close(actual, desired, tol, *, rtol=None, floor=1.0):
    """Leaf by leaf (pytrees of arrays), same shapes and ``|actual - desired| <= tol * scale +
    rtol * |desired|``, with ``scale`` the leaf's largest ``|desired|`` (at least ``floor``).

    Arguments:
        actual, desired: Arrays or pytrees of arrays.
        tol: Tolerance, or a dtype name (``"float32"``, ``"float64"``) for its :data:`TOL`.
        rtol: Elementwise relative tolerance (default ``tol``).
        floor: Smallest ``scale`` (1: absolute ``tol`` for small values).
    """
    tol = TOL[tol] if isinstance(tol, str) else tol
    rtol = tol if rtol is None else rtol
    leaves_a, leaves_d = jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(desired)
    assert len(leaves_a) == len(leaves_d), (len(leaves_a), len(leaves_d))
    for a, d in zip(leaves_a, leaves_d):
        a, d = np.asarray(a, np.float64), np.asarray(d, np.float64)
        assert a.shape == d.shape, (a.shape, d.shape)
        scale = max(floor, float(np.max(np.abs(d), initial=0.0)))
        np.testing.assert_allclose(a, d, rtol=rtol, atol=tol * scale)


def rotate_features(x, rot, reflect=False):
    """Rotate (and optionally reflect) features ``... P (L+1)**2 F`` with e3x's conventions."""
    from eqx_mp import nn, so3

    max_degree = int(round(np.sqrt(x.shape[-2]))) - 1
    y = nn.rotate(x, so3.wigner_d(rot, max_degree))
    return nn.reflect(y) if reflect else y
