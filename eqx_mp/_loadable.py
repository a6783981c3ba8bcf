"""Which classes :func:`eqx_mp.io.load` may rebuild from a file (see :mod:`eqx_mp.io`).

A header names its class as ``"package:Class"``; only ``eqx.Module`` subclasses defined in eqx_mp
that a public eqx_mp package exports in ``__all__``, or that :func:`register` names, resolve.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import equinox as eqx

__all__ = ["public_name", "register", "resolve_class"]


def public_name(cls: type) -> str:
    """``"package:Class"`` with the shortest package path that exports the class in its
    ``__all__`` (so a file does not name a private module, e.g. ``eqx_mp.models:Potential``, not
    ``eqx_mp.models._potential``)."""
    parts = cls.__module__.split(".")
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        try:
            mod = importlib.import_module(name)
            exported = cls.__qualname__ in getattr(mod, "__all__", ())
            if exported and getattr(mod, cls.__qualname__, None) is cls:
                return f"{name}:{cls.__qualname__}"
        except ImportError:  # pragma: no cover - a parent package that cannot be imported
            continue
    return f"{cls.__module__}:{cls.__qualname__}"


_ModuleClass = TypeVar("_ModuleClass", bound=type)

#: Classes registered with :func:`register`, by every name a file may record for them.
_REGISTERED: dict[str, type] = {}
#: The loadable classes each public eqx_mp package exports, filled on first use per package.
_EXPORTED: dict[str, dict[str, type]] = {}


def _is_eqx_mp_module_class(obj: Any) -> TypeGuard[type]:
    return (
        inspect.isclass(obj)
        and issubclass(obj, eqx.Module)
        and (obj.__module__ == "eqx_mp" or obj.__module__.startswith("eqx_mp."))
    )


def _names(cls: type, *packages: str) -> list[str]:
    return [f"{cls.__module__}:{cls.__qualname__}", *(f"{p}:{cls.__name__}" for p in packages)]


def register(cls: _ModuleClass) -> _ModuleClass:
    """Class decorator: let :func:`eqx_mp.io.load` rebuild ``cls`` from a file that names it.

    Needed only for a module class that no public eqx_mp package exports (exported ones load
    without it).

    Arguments:
        cls: An :class:`equinox.Module` subclass defined in eqx_mp.

    Returns:
        ``cls`` itself.

    Raises:
        TypeError: If ``cls`` is not an ``eqx.Module`` subclass defined in eqx_mp.
    """
    if not _is_eqx_mp_module_class(cls):
        raise TypeError(f"io.register takes an eqx.Module subclass defined in eqx_mp, got {cls!r}")
    for name in _names(cls, public_name(cls).partition(":")[0]):
        _REGISTERED[name] = cls
    return cls


def _public_packages() -> set[str]:
    """eqx_mp and its public top-level subpackages and modules (no import needed)."""
    root = importlib.import_module("eqx_mp")
    found = {f"eqx_mp.{m.name}" for m in pkgutil.iter_modules(root.__path__)
             if not m.name.startswith("_")}
    return {"eqx_mp", *found}


def _exported_classes(package: str) -> dict[str, type]:
    if package not in _EXPORTED:
        try:
            mod = importlib.import_module(package)
        except ImportError:  # an optional extra that is not installed (e.g. interop needs e3x)
            return {}
        found: dict[str, type] = {}
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if _is_eqx_mp_module_class(obj) and obj.__name__ == name:
                found.update(dict.fromkeys(_names(obj, package), obj))
        _EXPORTED[package] = found
    return _EXPORTED[package]


def resolve_class(name: Any, path: Path) -> type:
    """The class a header names, if :func:`eqx_mp.io.load` may rebuild it (see its module)."""
    if not isinstance(name, str):
        raise ValueError(f"{path}: the saved class must be a string, got {name!r}")
    if name in _REGISTERED:
        return _REGISTERED[name]
    module_name = name.partition(":")[0]
    top = ".".join(module_name.split(".")[:2])
    public = _public_packages()
    for package in dict.fromkeys(["eqx_mp", top]):
        if package in public and name in _exported_classes(package):
            return _exported_classes(package)[name]
    raise ValueError(
        f"{path}: refusing to load saved class {name!r}: eqx_mp.io.load rebuilds only "
        f"eqx.Module subclasses that eqx_mp exports (in the __all__ of eqx_mp or of one of its "
        f"subpackages) or registers with eqx_mp.io.register; pass cls=... to load a class you trust"
    )
