"""Shared test configuration."""

import os

# Two pytest-xdist workers share two cores: keep XLA's CPU thread pool from oversubscribing.
# Test shapes are tiny, so compilation dominates: skip LLVM's expensive optimisation passes
# (~15% less compile time; results are unchanged, only code speed).
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true",
)

import jax  # noqa: E402

# Compiling threefry random-bit programs dominates eager module construction on CPU (~0.15 s per
# parameter shape); the RngBitGenerator implementation compiles several times faster. Tests only
# need reproducible random draws, not threefry's stream.
jax.config.update("jax_default_prng_impl", "unsafe_rbg")


def pytest_collection_modifyitems(config, items):
    """Run the long ``slow`` tests first, so the short ones fill the gaps between xdist workers
    at the end instead of one worker finishing a long sweep alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
