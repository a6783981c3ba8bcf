"""Shared test configuration."""

import os

# Two pytest-xdist workers share two cores: keep XLA's CPU thread pool from oversubscribing.
# Test shapes are tiny, so compilation dominates: compile at XLA's optimisation level 0 and skip
# LLVM's expensive passes (results are unchanged, only code speed). This holds for every compiled
# function, so tests need no compile options of their own.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true",
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

# Compiling threefry random-bit programs dominates eager module construction on CPU (~0.15 s per
# parameter shape); the RngBitGenerator implementation compiles several times faster. Tests only
# need reproducible random draws, not threefry's stream.
jax.config.update("jax_default_prng_impl", "unsafe_rbg")


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Run the test in float32, and in float64 with x64 enabled only for this test.

    Parametrise with ``indirect=True`` to choose the dtypes (e.g. to mark float64 slow).
    """
    if request.param == "float32":
        yield jnp.float32
        return
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield jnp.float64
    finally:
        jax.config.update("jax_enable_x64", prev)


def pytest_collection_modifyitems(config, items):
    """Run the long ``slow`` tests first, so the short ones fill the gaps between xdist workers
    at the end instead of one worker finishing a long sweep alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
