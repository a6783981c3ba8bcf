"""Shared test configuration."""

import os

# Two pytest-xdist workers share two cores: keep XLA's CPU thread pool from oversubscribing.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
