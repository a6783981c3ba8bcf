"""eqx_mp._xla_flags: the YNNPACK-reduction flag eqx_mp adds to XLA_FLAGS on import."""

import os
import subprocess
import sys

import pytest

from eqx_mp import _xla_flags
from eqx_mp._xla_flags import FLAG, with_defaults


def test_flag_is_added_for_known_jaxlib_versions():
    assert with_defaults("", (0, 10, 2)) == FLAG
    assert with_defaults("", (0, 11, 0)) == FLAG
    assert with_defaults("--xla_cpu_multi_thread_eigen=false", (0, 10, 0)) == (
        "--xla_cpu_multi_thread_eigen=false " + FLAG)


@pytest.mark.parametrize("version", [(0, 4, 30), (0, 9, 1), (0, 12, 0), (1, 0, 0)])
def test_unknown_jaxlib_versions_get_nothing(version):
    # XLA aborts the process on a flag it does not know.
    assert with_defaults("--a=1", version) == "--a=1"


def test_users_setting_wins_and_opt_out():
    mine = "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"
    assert with_defaults(mine, (0, 10, 2)) == mine
    for off in ("0", "false", "No", " off "):
        assert with_defaults("", (0, 10, 2), off) == ""
    assert with_defaults("", (0, 10, 2), "1") == FLAG


_PROBE = """
import os, eqx_mp, jax, jax.numpy as jnp
f = jax.jit(lambda x, y: jnp.sum(x * y, axis=3))
x = jnp.ones((16, 9, 1, 9, 32))
hlo = f.lower(x, x).compile().as_text()
print(os.environ.get("XLA_FLAGS", ""), "|", "__ynn_fusion" in hlo, "|", eqx_mp._xla_flags.APPLIED)
"""


def _probe(**env) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", _xla_flags.OPT_OUT)}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=environ, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    return [p.strip() for p in out.strip().splitlines()[-1].split("|")]


def test_import_sets_the_flag_and_keeps_reductions_out_of_ynnpack():
    version = _xla_flags._jaxlib_version()[:2]
    flags, ynn, applied = _probe()
    if _xla_flags.JAXLIB_VERSIONS[0] <= version < _xla_flags.JAXLIB_VERSIONS[1]:
        assert (flags, ynn, applied) == (FLAG, "False", "True")
    else:
        assert (flags, applied) == ("", "False")
    flags, _, applied = _probe(**{_xla_flags.OPT_OUT: "0"})
    assert (flags, applied) == ("", "False")
