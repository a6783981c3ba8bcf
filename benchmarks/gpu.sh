#!/usr/bin/env bash
# The GPU benchmark: the potential's MD and force-training steps (eqx_mp vs e3x) and one
# MessagePass layer (eqx_mp vs e3x vs e3nn-jax) on the first GPU, in a few minutes.
# Needs the project installed with a CUDA build of JAX, e.g.:
#   python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" "jax[cuda12]"
# Writes benchmarks/results/potential_gpu.json and latest_gpu.json (commit them) and prints the
# tables. The schedule is the GPU one (chosen when lowering for CUDA; see docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', d; print('device:', d.device_kind)"
"$PY" benchmarks/bench_potential.py --device gpu --atoms 256,2048,8192 --repeats 10 --no-sweep
"$PY" benchmarks/bench_message_pass.py --device gpu --configs typical,high_degree,small --repeats 10 --no-sweep
