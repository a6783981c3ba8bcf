"""eqx_mp.io.load rebuilds only eqx_mp's own module classes, never whatever a file names.

The files here are crafted by hand: a header naming the target, the leaves of a real module, and
the SHA-256 recomputed as the format defines it (so the checksum passes and only the class check
stands between the file and the call). Each target is replaced by a recorder first, to show that
refusing happens before anything is called.
"""

import hashlib
import json
import os

import equinox as eqx
import jax
import numpy as np
import pytest

import eqx_mp
import eqx_mp.data
import eqx_mp.train
import eqx_mp.train.state
from helpers import tiny_potential
from eqx_mp import _loadable, io
from eqx_mp.nn import Dense, MessagePass

KEY = jax.random.key(0)


def _craft(path, cls_name, hyperparams, leaves=b""):
    """A file in eqx_mp.io's format (see its docstring) naming ``cls_name``."""
    header = {"class": cls_name, "hyperparams": hyperparams, "nbytes": len(leaves)}
    canonical = json.dumps(header, sort_keys=True).encode()
    header["sha256"] = hashlib.sha256(canonical + b"\n" + leaves).hexdigest()
    path.write_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + leaves)
    return path


def _dense_leaves(tmp_path):
    return io.save(tmp_path / "dense.eqx", Dense(4, 2, 1, key=KEY)).read_bytes().partition(b"\n")[2]


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return 0


# (header class, module holding the target, attribute) for every kind of name a file may hold.
REFUSED = {
    "function via eqx_mp.io": ("eqx_mp.io:os.system", os, "system"),
    "function directly": ("os:system", os, "system"),
    "public eqx_mp function": ("eqx_mp.io:save", io, "save"),
    "eqx.Module outside eqx_mp": ("equinox.nn:Linear", eqx.nn, "Linear"),
    "class outside eqx_mp": ("collections:OrderedDict", __import__("collections"), "OrderedDict"),
    "non-Module class in eqx_mp": ("eqx_mp.data:Dataset", eqx_mp.data, "Dataset"),
    "exception class in eqx_mp": ("eqx_mp:ShapeError", eqx_mp, "ShapeError"),
    "non-Module config class": ("eqx_mp.train:TrainConfig", eqx_mp.train, "TrainConfig"),
    "private Module class in eqx_mp": ("eqx_mp.train.state:Counters", eqx_mp.train.state, "Counters"),
    "module object": ("eqx_mp:os", os, "system"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_before_anything_is_called(case, tmp_path, monkeypatch):
    name, owner, attr = REFUSED[case]
    leaves = _dense_leaves(tmp_path)
    recorder = _Recorder()
    monkeypatch.setattr(owner, attr, recorder)
    path = _craft(tmp_path / "evil.eqx", name, {"command": "touch pwned"}, leaves)
    assert io.read_header(path)["class"] == name  # the checksum is valid
    with pytest.raises(ValueError, match=f"refusing to load saved class '{name}'"):
        io.load(path)
    assert recorder.calls == []
    assert not (tmp_path / "pwned").exists()


def test_os_system_is_never_reached(tmp_path, monkeypatch):
    """The report's exploit: eqx_mp.io imports os, so getattr resolution reached os.system."""
    sentinel = _Recorder()
    monkeypatch.setattr(os, "system", sentinel)
    path = _craft(tmp_path / "m.eqx", "eqx_mp.io:os.system", {"command": "echo pwned"})
    with pytest.raises(ValueError, match=r"eqx_mp\.io:os\.system"):
        io.load(path)
    assert sentinel.calls == []


def test_cls_must_be_a_module_class(tmp_path, monkeypatch):
    sentinel = _Recorder()
    monkeypatch.setattr(os, "system", sentinel)
    path = io.save(tmp_path / "d.eqx", Dense(4, 2, 1, key=KEY))
    with pytest.raises(TypeError, match="cls must be an eqx.Module subclass"):
        io.load(path, cls=os.system)
    assert sentinel.calls == []


def test_public_names_and_module_paths_load(tmp_path):
    """Files name the shortest public path (eqx_mp:MessagePass); older files the defining
    module (eqx_mp.nn.message_pass:MessagePass). Both load, bit for bit."""
    mp = MessagePass(4, 3, 1, 1, key=KEY)
    path = io.save(tmp_path / "mp.eqx", mp)
    assert io.read_header(path)["class"] == "eqx_mp:MessagePass"
    header_line, _, leaves = path.read_bytes().partition(b"\n")
    header = json.loads(header_line)
    names = ["eqx_mp:MessagePass", "eqx_mp.nn:MessagePass", "eqx_mp.nn.message_pass:MessagePass"]
    for name in names:
        other = _craft(tmp_path / "other.eqx", name, header["hyperparams"], leaves)
        loaded = io.load(other)
        assert type(loaded) is MessagePass
        for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(mp)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_model_class_loads(tmp_path):
    model = tiny_potential()
    path = io.save(tmp_path / "model.eqx", model)
    assert io.read_header(path)["class"] == "eqx_mp.models:Potential"
    loaded = io.load(path)
    assert type(loaded) is type(model)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(model)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_register_makes_an_unexported_module_class_loadable(tmp_path, monkeypatch):
    """A module class no public package exports is refused until it is registered."""
    monkeypatch.setattr(_loadable, "_REGISTERED", {})
    monkeypatch.setattr(_loadable, "_EXPORTED", {})
    monkeypatch.setattr(eqx_mp, "__all__", [n for n in eqx_mp.__all__ if n != "Dense"])
    monkeypatch.setattr(eqx_mp.nn, "__all__", [n for n in eqx_mp.nn.__all__ if n != "Dense"])
    d = Dense(4, 2, 1, key=KEY)
    path = io.save(tmp_path / "d.eqx", d)
    assert io.read_header(path)["class"] == "eqx_mp.nn.dense:Dense"
    with pytest.raises(ValueError, match="refusing to load saved class 'eqx_mp.nn.dense:Dense'"):
        io.load(path)
    np.testing.assert_array_equal(io.load(path, cls=Dense).kernel, d.kernel)  # caller's choice
    assert io.register(Dense) is Dense
    np.testing.assert_array_equal(io.load(path).kernel, d.kernel)


@pytest.mark.parametrize("obj", [eqx.nn.Linear, eqx_mp.data.Dataset, os.system])
def test_register_refuses_what_load_must_not_call(obj, monkeypatch):
    monkeypatch.setattr(_loadable, "_REGISTERED", {})
    with pytest.raises(TypeError, match="eqx.Module subclass defined in eqx_mp"):
        io.register(obj)
    assert _loadable._REGISTERED == {}
