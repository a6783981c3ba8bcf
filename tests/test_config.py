"""eqx_mp.Config: e3x's global options, same names, defaults, validation and binding semantics."""

import inspect

import e3x
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_mp
from eqx_mp import Config, so3


@pytest.fixture
def restore_config():
    saved = {
        k: getattr(Config, k)
        for k in vars(Config)
        if not k.startswith("_") and not callable(getattr(Config, k))
    }
    saved_e3x = (e3x.Config.cartesian_order, e3x.Config.normalization, e3x.Config.use_fused_tensor)
    yield
    for k, v in saved.items():
        setattr(Config, k, v)
    (e3x.Config.cartesian_order, e3x.Config.normalization, e3x.Config.use_fused_tensor) = saved_e3x


def test_same_attributes_and_defaults_as_e3x():
    assert eqx_mp.Config is eqx_mp.config.Config
    for name in ("cartesian_order", "use_fused_tensor", "normalization"):
        assert getattr(Config, name) == getattr(e3x.Config, name)
    setters = {n for n in dir(e3x.Config) if n.startswith("set_")}
    assert setters <= {n for n in dir(Config) if n.startswith("set_")}
    for n in setters:
        assert list(inspect.signature(getattr(Config, n)).parameters) == list(
            inspect.signature(getattr(e3x.Config, n)).parameters
        )


def test_setters(restore_config, tmp_path):
    Config.set_cartesian_order(False)
    Config.set_use_fused_tensor(True)
    Config.set_normalization("4pi")
    assert (Config.cartesian_order, Config.use_fused_tensor, Config.normalization) == (
        False,
        True,
        "4pi",
    )
    Config.set_clebsch_gordan_cache(tmp_path / "cg.npz")
    assert Config.clebsch_gordan_cache == tmp_path / "cg.npz"
    Config.set_clebsch_gordan_cache(None)
    assert Config.clebsch_gordan_cache is None
    with pytest.raises(ValueError, match=r"normalization must be in .*received 'unit'"):
        Config.set_normalization("unit")
    assert Config.normalization == "4pi"  # unchanged by the failed call


def test_defaults_are_bound_at_import_as_in_e3x(restore_config):
    """The signatures' defaults come from Config (as in e3x), read when the library is imported;
    changing Config later changes neither library's defaults."""
    for fn, ref in [
        (so3.spherical_harmonics, e3x.so3.spherical_harmonics),
        (so3.tensor_to_irreps, e3x.so3.tensor_to_irreps),
        (so3.wigner_d, e3x.so3.wigner_d),
    ]:
        for p in ("cartesian_order", "normalization"):
            if p in inspect.signature(ref).parameters:
                assert (
                    inspect.signature(fn).parameters[p].default
                    == inspect.signature(ref).parameters[p].default
                )
    r = jnp.array([[0.3, -0.4, 0.8]])
    before = so3.spherical_harmonics(r, 1)
    Config.set_cartesian_order(False)
    e3x.Config.set_cartesian_order(False)
    np.testing.assert_array_equal(so3.spherical_harmonics(r, 1), before)
    np.testing.assert_allclose(
        so3.spherical_harmonics(r, 1), e3x.so3.spherical_harmonics(r, 1), rtol=1e-6
    )
    np.testing.assert_allclose(
        before[0, 1:], r[0] / jnp.linalg.norm(r), rtol=1e-6
    )  # Cartesian x, y, z
