"""Every public name of e3x's so3, ops and nn exists in eqx_mp with e3x's argument names, kinds and
defaults (functions) or accepts e3x's attribute names as constructor arguments (modules)."""

import dataclasses
import functools
import inspect
import types

import e3x
import pytest

import eqx_mp

SUBPACKAGES = ["so3", "ops", "nn"]
#: Extra optional arguments eqx_mp accepts after e3x's (documented extensions).
EXTRA = {("nn", "basis"): {"radial_kwargs", "angular_kwargs"}}


def _public(mod):
    return sorted(
        n
        for n in dir(mod)
        if not n.startswith("_") and not isinstance(getattr(mod, n), types.ModuleType)
    )


def _default(p):
    d = p.default
    if isinstance(d, functools.partial):  # compare partials by function name and arguments
        return ("partial", d.func.__name__, d.args, tuple(sorted(d.keywords.items())))
    return d


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_every_public_name_exists(sub):
    ours = getattr(eqx_mp, sub)
    missing = [n for n in _public(getattr(e3x, sub)) if not hasattr(ours, n)]
    assert not missing, f"eqx_mp.{sub} lacks {missing}"
    assert set(getattr(ours, "__all__", [])) >= {n for n in _public(ours)}, (
        f"eqx_mp.{sub}.__all__ incomplete"
    )


def _functions(sub):
    mod = getattr(e3x, sub)
    return [
        (sub, n)
        for n in _public(mod)
        if callable(getattr(mod, n)) and not inspect.isclass(getattr(mod, n))
    ]


@pytest.mark.parametrize("sub, name", [c for s in SUBPACKAGES for c in _functions(s)])
def test_function_signatures_match(sub, name):
    ref = inspect.signature(getattr(getattr(e3x, sub), name))
    ours = inspect.signature(getattr(getattr(eqx_mp, sub), name))
    rp, op = list(ref.parameters.values()), list(ours.parameters.values())
    assert [(p.name, p.kind) for p in rp] == [(p.name, p.kind) for p in op[: len(rp)]]
    assert [_default(p) for p in rp] == [_default(p) for p in op[: len(rp)]]
    extra = {p.name for p in op[len(rp) :]}
    assert extra <= EXTRA.get((sub, name), set())
    assert all(p.default is not inspect.Parameter.empty for p in op[len(rp) :])


@pytest.mark.parametrize(
    "name", [n for n in _public(e3x.nn) if inspect.isclass(getattr(e3x.nn, n))]
)
def test_module_options_are_constructor_arguments(name):
    ref = getattr(e3x.nn, name)
    # ``parent``/``name`` are flax internals; ``Embed.embedding`` is its parameter (set in setup()).
    fields = {f.name for f in dataclasses.fields(ref)} - {"parent", "name", "embedding"}
    params = set(inspect.signature(getattr(eqx_mp.nn, name).__init__).parameters)
    # e3x's sizes are inferred from the first call; eqx_mp takes them as explicit arguments.
    assert fields <= params, f"{name}: e3x options not accepted: {sorted(fields - params)}"
    for f in dataclasses.fields(ref):
        if f.name in params and f.default is not dataclasses.MISSING:
            ours = inspect.signature(getattr(eqx_mp.nn, name).__init__).parameters[f.name].default
            if not callable(f.default) and not callable(ours):
                assert ours == f.default or (
                    ours is None and f.name in ("features", "max_degree")
                ), (f.name, ours, f.default)
