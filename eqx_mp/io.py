"""Save and load any eqx_mp module: one JSON line (class, hyper-parameters), then its leaves.

This is the project's one file format, for single layers, trained models (``model.eqx``) and
training checkpoints (``checkpoint.eqx``)::

    {"class": "eqx_mp.nn.dense:Dense", "hyperparams": {...}, "sha256": "..."}\\n
    <eqx.tree_serialise_leaves bytes>

Optional header keys: ``float_dtype`` (the dtype of every floating-point leaf, when the module
has one, so that a float64 model loads as float64), ``metadata`` (any JSON object the writer
wants to keep next to the arrays, e.g. a training run's step counter), ``nbytes`` (the size of
the leaf bytes) and ``sha256``, the SHA-256 of the canonical header (sorted keys, without
``sha256``) followed by the leaf bytes.

:func:`save` writes atomically: into a temporary file in the same directory, flushed to disk,
then renamed over the target, so a reader sees either the old file or the complete new one,
never a half-written file. :func:`load` checks the SHA-256 before reading any leaf, so a file that
was truncated or altered later is refused with a ``ValueError`` saying so.

Loading rebuilds a skeleton with ``eqx.filter_eval_shape(cls, **hyperparams, key=...)`` (no
parameters are initialised) and reads the leaves into it, so a file always loads into the
configuration it was saved from. Plain ``eqx.tree_deserialise_leaves`` into a module of another
configuration may fail with an unclear error, or silently succeed: a module without a bias
leaves the saved bias unread, and a static option such as ``cartesian_order`` is not stored at
all. :func:`load` with ``like=`` instead raises ``ValueError`` naming the mismatched
hyper-parameter, or the leaf and its expected vs saved shape/dtype.

**Which classes load.** The header names a class, and :func:`load` calls it (under
``eqx.filter_eval_shape``) with the file's hyper-parameters, so a file must not be able to name
just anything (``"eqx_mp.io:os.system"`` would otherwise run a shell command). :func:`load`
rebuilds only :class:`equinox.Module` subclasses defined in eqx_mp that are

* exported by eqx_mp or by one of its public subpackages or modules (named in its ``__all__``,
  e.g. ``eqx_mp.nn:Dense``, ``eqx_mp.models:Potential``): a new public module class is loadable
  as soon as its package lists it in ``__all__``, nothing else to do; or
* registered with the :func:`register` decorator (for a module class kept off the public
  surface).

Every other name (a function, a class outside eqx_mp, a class of eqx_mp that is not an
``eqx.Module``, a private class) is refused with a ``ValueError`` naming it, before anything is
imported beyond eqx_mp's own public packages and before anything is called. ``cls=`` loads a
class the caller chooses (e.g. a training checkpoint's state); it must be an ``eqx.Module``
subclass.

Example::

    layer = eqx_mp.nn.Dense(8, 4, 1, key=jax.random.key(0))
    eqx_mp.io.save("dense.eqx", layer)
    same = eqx_mp.io.load("dense.eqx")          # bit-identical, no skeleton needed
"""

from __future__ import annotations

import hashlib
import inspect
import io as _io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._loadable import public_name as _public_name
from ._loadable import register as register
from ._loadable import resolve_class as _resolve_class

__all__ = ["save", "load", "read_header", "hyperparameters", "register"]

_DTYPE_TAG = "__dtype__"
_PRECISION_TAG = "__precision__"


def _is_leaf_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def _encode(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_encode(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v, f"{name}.{k}") for k, v in value.items()}
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
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
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

    Arguments:
        module: Any :class:`equinox.Module`.

    Returns:
        A dict of plain JSON values (dtypes and precisions tagged).

    Raises:
        TypeError: If a stored argument is not JSON-serialisable.
    """
    if callable(getattr(module, "hyperparameters", None)):
        hp = dict(getattr(module, "hyperparameters")())
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
            leaves = _float_leaves(module)
            if leaves:
                hp["param_dtype"] = leaves[0].dtype
    return {k: _encode(v, k) for k, v in hp.items()}


def _float_leaves(tree: Any) -> list[Any]:
    return [x for x in jax.tree_util.tree_leaves(eqx.filter(tree, _is_leaf_array))
            if jnp.issubdtype(x.dtype, jnp.inexact)]


def _digest(header: dict[str, Any], leaves: bytes) -> str:
    canonical = json.dumps({k: v for k, v in header.items() if k != "sha256"}, sort_keys=True)
    return hashlib.sha256(canonical.encode() + b"\n" + leaves).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a flushed temporary file in the same directory + rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save(
    path: str | os.PathLike[str],
    module: eqx.Module,
    hyperparams: dict[str, Any] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``module`` to ``path`` atomically: a JSON header line, then its leaves.

    Arguments:
        path: File to write (parent directories are created). An existing file is replaced only
            once the new one is complete.
        module: Any :class:`equinox.Module` whose class takes the hyper-parameters plus a
            keyword-only ``key``. :func:`load` rebuilds it without ``cls=`` when eqx_mp exports
            or registers the class (see the module docstring).
        hyperparams: Constructor arguments that rebuild the structure (default:
            :func:`hyperparameters` of ``module``).
        metadata: Optional JSON-serialisable dict stored in the header (read it back with
            :func:`read_header`).

    Returns:
        The path written.
    """
    hp = hyperparameters(module) if hyperparams is None else {k: _encode(v, k) for k, v in hyperparams.items()}
    header: dict[str, Any] = {"class": _public_name(type(module)), "hyperparams": hp}
    dtypes = {jnp.dtype(x.dtype).name for x in _float_leaves(module)}
    if len(dtypes) == 1:
        header["float_dtype"] = dtypes.pop()
    if metadata is not None:
        header["metadata"] = _encode(metadata, "metadata")
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, module)
    leaves = buf.getvalue()
    header["nbytes"] = len(leaves)
    header["sha256"] = _digest(header, leaves)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(p, (json.dumps(header, sort_keys=True) + "\n").encode() + leaves)
    return p


def _read_verified(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any], bytes]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no saved module at {p}")
    data = p.read_bytes()
    first, _, leaves = data.partition(b"\n")
    try:
        header = json.loads(first.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{p}: not an eqx_mp file (the first line must be a JSON object of hyper-parameters: {err})"
        ) from err
    if not isinstance(header, dict) or not {"class", "hyperparams"} <= set(header):
        raise ValueError(
            f"{p}: not an eqx_mp file (the first line must be a JSON object with 'class' and "
            f"'hyperparams'), got {first[:80]!r}"
        )
    if "sha256" in header and _digest(header, leaves) != header["sha256"]:
        what, size = f"saved {header['class'].rpartition(':')[2]}", header.get("nbytes", -1)
        if len(leaves) < size:
            problem = f"truncated: {len(leaves)} of the {size} bytes of leaves of the {what}"
        elif len(leaves) > size >= 0:
            problem = f"extra data after the {size} bytes of leaves of the {what}"
        else:
            problem = f"corrupt: the checksum of the {what} does not match"
        raise ValueError(f"{p}: {problem}; refusing to load it")
    return p, header, leaves


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The verified JSON header of a file written by :func:`save`.

    Arguments:
        path: The file.

    Returns:
        The header dict: ``class``, ``hyperparams`` and, if present, ``float_dtype``,
        ``metadata`` and ``sha256``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not in this format, or truncated or corrupt.
    """
    return _read_verified(path)[1]


def _leaf_shapes(tree: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(tree, _is_leaf_array))
    return {jax.tree_util.keystr(k): (tuple(v.shape), jnp.dtype(v.dtype)) for k, v in leaves}


def _cast_floats(skeleton: Any, dtype_name: str, path: Path) -> Any:
    dtype = jnp.dtype(dtype_name)
    if dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{path}: the parameters are float64; enable double precision before loading it "
            f"(jax.config.update('jax_enable_x64', True))"
        )

    def cast(x: Any) -> Any:
        if isinstance(x, jax.ShapeDtypeStruct) and jnp.issubdtype(x.dtype, jnp.floating):
            return jax.ShapeDtypeStruct(x.shape, dtype)
        return x

    return jax.tree_util.tree_map(cast, skeleton)


def _check_like(like: eqx.Module, saved_cls: type, hp_json: dict[str, Any], p: Path) -> None:
    if type(like) is not saved_cls:
        raise ValueError(f"{p} holds a {saved_cls.__name__}, cannot load it into a {type(like).__name__}")
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


def load(
    path: str | os.PathLike[str],
    like: eqx.Module | None = None,
    *,
    cls: type | None = None,
) -> Any:
    """Read a module written by :func:`save`.

    Arguments:
        path: The file.
        like: Optional module (or ``eqx.filter_eval_shape`` skeleton) the file must match: same
            class, same hyper-parameters, same leaf shapes and dtypes.
        cls: The class to rebuild, an ``eqx.Module`` subclass (default: the class recorded in
            the file, which must be one that eqx_mp exports or registers; see the module
            docstring).

    Returns:
        The module, bit-identical to the saved one.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        TypeError: If ``cls`` is not an ``eqx.Module`` subclass.
        ValueError: If the file names a class that may not be loaded (the message names it; nothing
            is called), is not in this format, is truncated or corrupt (checksum), has
            extra data, or does not match ``like`` (the message names the class,
            hyper-parameter or leaf and both values).
    """
    p, header, leaves = _read_verified(path)
    if cls is not None and not (inspect.isclass(cls) and issubclass(cls, eqx.Module)):
        raise TypeError(f"cls must be an eqx.Module subclass, got {cls!r}")
    saved_cls = _resolve_class(header["class"], p) if cls is None else cls
    hp_json = header["hyperparams"]
    hp = {k: _decode(v) for k, v in hp_json.items()}
    if like is not None:
        _check_like(like, saved_cls, hp_json, p)
    try:
        skeleton = eqx.filter_eval_shape(saved_cls, **hp, key=jax.random.key(0))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{p}: cannot rebuild {saved_cls.__name__}(**{hp_json}): {err}") from err
    if "float_dtype" in header:
        skeleton = _cast_floats(skeleton, header["float_dtype"], p)
    if like is not None:
        want, have = _leaf_shapes(like), _leaf_shapes(skeleton)
        for k in sorted(set(want) | set(have)):
            if want.get(k) != have.get(k):
                raise ValueError(
                    f"{p}: leaf {saved_cls.__name__}{k} is (shape, dtype) {have.get(k)} in the file "
                    f"but {want.get(k)} in `like`"
                )
    f = _io.BytesIO(leaves)
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
