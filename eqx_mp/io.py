"""Save and load any eqx_mp module: one JSON line of hyper-parameters, then its leaves.

The file format is the project convention (also used by :func:`eqx_mp.train.save_model`)::

    {"class": "eqx_mp.nn.dense:Dense", "hyperparams": {...}}\\n
    <eqx.tree_serialise_leaves bytes>

Loading rebuilds a skeleton with ``eqx.filter_eval_shape(cls, **hyperparams, key=...)`` (no
parameters are initialised) and reads the leaves into it, so a file always loads into the
configuration it was saved from. Plain ``eqx.tree_deserialise_leaves`` into a module of another
configuration may fail with an unclear error, or silently succeed: a module without a bias
leaves the saved bias unread, and a static option such as ``cartesian_order`` is not stored at
all. :func:`load` with ``like=`` instead raises ``ValueError`` naming the mismatched
hyper-parameter, or the leaf and its expected vs saved shape/dtype.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["save", "load", "hyperparameters"]

_DTYPE_TAG = "__dtype__"
_PRECISION_TAG = "__precision__"


def _is_leaf_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def _encode(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_encode(v, name) for v in value]
    if isinstance(value, jax.lax.Precision):
        return {_PRECISION_TAG: value.name}
    try:
        return {_DTYPE_TAG: jnp.dtype(value).name}
    except TypeError:
        pass
    raise TypeError(
        f"hyper-parameter {name!r} = {value!r} ({type(value).__name__}) is not JSON-serialisable; "
        f"pass hyperparams=... with plain values"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_DTYPE_TAG}:
        return jnp.dtype(value[_DTYPE_TAG])
    if isinstance(value, dict) and set(value) == {_PRECISION_TAG}:
        return jax.lax.Precision[value[_PRECISION_TAG]]
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def hyperparameters(module: eqx.Module) -> dict[str, Any]:
    """The constructor arguments that rebuild ``module``'s structure (JSON-serialisable).

    Uses ``module.hyperparameters()`` when the module defines it (e.g.
    :class:`~eqx_mp.models.Potential`); otherwise every ``__init__`` argument that is stored as a
    field of the same name (sizes, degrees, flags, ``dtype``), plus ``param_dtype`` taken from
    the first floating-point parameter. Initialisers are not stored (the saved leaves replace
    whatever they would produce).

    Raises:
        TypeError: If a stored argument is not JSON-serialisable.
    """
    if callable(getattr(module, "hyperparameters", None)):
        hp = dict(module.hyperparameters())
    else:
        hp = {}
        params = inspect.signature(type(module).__init__).parameters
        for name, p in params.items():
            if name in ("self", "key") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(module, name, None)
            if hasattr(module, name) and not (_is_leaf_array(value) or isinstance(value, eqx.Module)):
                hp[name] = value
        if "param_dtype" in params:
            leaves = [x for x in jax.tree_util.tree_leaves(eqx.filter(module, _is_leaf_array))
                      if jnp.issubdtype(x.dtype, jnp.inexact)]
            if leaves:
                hp["param_dtype"] = leaves[0].dtype
    return {k: _encode(v, k) for k, v in hp.items()}


def save(path: str | os.PathLike[str], module: eqx.Module, hyperparams: dict[str, Any] | None = None) -> Path:
    """Write ``module`` to ``path``: a JSON line (class and hyper-parameters), then its leaves.

    Arguments:
        path: File to write (parent directories are created).
        module: Any :class:`equinox.Module` whose class is importable and takes the
            hyper-parameters plus a keyword-only ``key``.
        hyperparams: Constructor arguments that rebuild the structure (default:
            :func:`hyperparameters` of ``module``).

    Returns:
        The path written.
    """
    cls = type(module)
    hp = hyperparameters(module) if hyperparams is None else {k: _encode(v, k) for k, v in hyperparams.items()}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    header = {"class": f"{cls.__module__}:{cls.__qualname__}", "hyperparams": hp}
    with open(p, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, module)
    return p


def _resolve_class(name: str, path: Path) -> type:
    module_name, _, qualname = name.partition(":")
    if not (module_name == "eqx_mp" or module_name.startswith("eqx_mp.")):
        raise ValueError(
            f"{path}: saved class {name!r} is not an eqx_mp class; pass cls=... to load it explicitly"
        )
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _leaf_shapes(tree: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(tree, _is_leaf_array))
    return {jax.tree_util.keystr(k): (tuple(v.shape), jnp.dtype(v.dtype)) for k, v in leaves}


def load(
    path: str | os.PathLike[str],
    like: eqx.Module | None = None,
    *,
    cls: type | None = None,
) -> Any:
    """Read a module written by :func:`save` (or :func:`eqx_mp.train.save_model` with ``cls=``).

    Arguments:
        path: The file.
        like: Optional module (or ``eqx.filter_eval_shape`` skeleton) the file must match: same
            class, same hyper-parameters, same leaf shapes and dtypes.
        cls: The class to rebuild (default: the class recorded in the file, which must be an
            eqx_mp class). Needed for files whose first line is a bare hyper-parameter dict.

    Returns:
        The module, bit-identical to the saved one.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not in this format, has extra data, or does not match
            ``like`` (the message names the class, hyper-parameter or leaf and both values).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no saved module at {p}")
    with open(p, "rb") as f:
        first = f.readline()
        try:
            header = json.loads(first.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{p}: the first line must be a JSON object of hyper-parameters ({err})") from err
        if not isinstance(header, dict):
            raise ValueError(f"{p}: the first line must be a JSON object, got {first[:80]!r}")
        if set(header) == {"class", "hyperparams"}:
            saved_cls = _resolve_class(header["class"], p) if cls is None else cls
            hp_json = header["hyperparams"]
        elif cls is not None:
            saved_cls, hp_json = cls, header
        else:
            raise ValueError(f"{p}: the header has no 'class'; pass cls=... to say what to rebuild")
        hp = {k: _decode(v) for k, v in hp_json.items()}

        if like is not None:
            if type(like) is not saved_cls:
                raise ValueError(
                    f"{p} holds a {saved_cls.__name__}, cannot load it into a {type(like).__name__}"
                )
            try:
                like_hp: dict[str, Any] | None = hyperparameters(like)
            except TypeError:
                like_hp = None
            if like_hp is not None:
                for k in sorted(set(hp_json) | set(like_hp)):
                    if hp_json.get(k) != like_hp.get(k):
                        raise ValueError(
                            f"{p}: hyper-parameter {k!r} is {hp_json.get(k)!r} in the file but "
                            f"{like_hp.get(k)!r} in `like` ({saved_cls.__name__})"
                        )

        try:
            skeleton = eqx.filter_eval_shape(saved_cls, **hp, key=jax.random.key(0))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{p}: cannot rebuild {saved_cls.__name__}(**{hp_json}): {err}") from err
        if like is not None:
            want, have = _leaf_shapes(like), _leaf_shapes(skeleton)
            for k in sorted(set(want) | set(have)):
                if want.get(k) != have.get(k):
                    raise ValueError(
                        f"{p}: leaf {saved_cls.__name__}{k} is (shape, dtype) {have.get(k)} in the file "
                        f"but {want.get(k)} in `like`"
                    )
        try:
            module = eqx.tree_deserialise_leaves(f, skeleton)
        except (RuntimeError, ValueError, EOFError, OSError) as err:
            raise ValueError(f"{p}: the saved leaves do not match {saved_cls.__name__}(**{hp_json}): {err}") from err
        if f.read(1):
            raise ValueError(
                f"{p}: extra data after the leaves of {saved_cls.__name__}(**{hp_json}); the file "
                f"was written by a module with more parameters"
            )
    return module
