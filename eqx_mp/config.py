"""Global configuration: the defaults of ``cartesian_order``, ``normalization`` and
``use_fused_tensor`` (e3x's ``e3x.Config``), and the contraction engine's ``schedule`` (eqx_mp's
own: see :meth:`Config.set_schedule`).

As in e3x 1.0.2, the values are read where functions and modules are *defined*: signatures such
as ``spherical_harmonics(..., cartesian_order: bool = Config.cartesian_order)`` bind the value
when eqx_mp is imported. The setters change the attributes (code that reads ``Config.*`` itself
sees the change) but not the defaults of functions and modules that already exist, exactly as in
e3x, so code moved from e3x behaves the same. To use another convention, pass the argument
explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from ._checks import Normalization, check_normalization

__all__ = ["Config"]

PathLike = Union[str, os.PathLike]

#: Values of :attr:`Config.schedule` and of the environment variable ``EQX_MP_SCHEDULE``.
SCHEDULES = ("auto", "cpu", "gpu")


def check_schedule(schedule: object, source: str = "schedule") -> str:
    """``schedule`` if it is one of :data:`SCHEDULES`, else a ``ValueError`` naming ``source``."""
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"{source} must be one of {', '.join(map(repr, SCHEDULES))}, "
                         f"got {schedule!r}")
    return schedule


def _initial_schedule() -> str:
    value = os.environ.get("EQX_MP_SCHEDULE", "").strip().lower() or "auto"
    return check_schedule(value, "the environment variable EQX_MP_SCHEDULE")


class Config:
    """Static class holding eqx_mp's global options (e3x's ``Config``, same names and defaults).

    Attributes:
        cartesian_order: Whether irreps are stored in Cartesian order by default (``True``).
        use_fused_tensor: Whether modules that need a tensor product use ``FusedTensor`` instead
            of ``Tensor`` by default (``False``).
        normalization: Default normalisation of the spherical harmonics (``'racah'``).
        schedule: How the contraction engine runs (eqx_mp only, not in e3x): ``'auto'`` (by
            the backend a function is compiled for: cache-blocked loops on CPUs, wide
            vectorised kernels on GPUs and TPUs), ``'cpu'`` or ``'gpu'`` (either one on any
            backend). Initially the environment variable ``EQX_MP_SCHEDULE`` (read at import),
            else ``'auto'``. Read when a function is traced; see :meth:`set_schedule`.
        spherical_harmonics_cache: Path accepted for compatibility with e3x's disk caches of
            lookup tables. eqx_mp has no such tables (it derives every coefficient in memory,
            once per process), so this path and the three below are stored but never read or
            written.
        clebsch_gordan_cache: As ``spherical_harmonics_cache``.
        wigner_d_cache: As ``spherical_harmonics_cache``.
        tensor_conversion_cache: As ``spherical_harmonics_cache``.

    Example:
        >>> import eqx_mp
        >>> eqx_mp.Config.cartesian_order, eqx_mp.Config.normalization
        (True, 'racah')
    """

    cartesian_order: bool = True
    use_fused_tensor: bool = False
    normalization: Normalization = "racah"
    schedule: str = _initial_schedule()
    spherical_harmonics_cache: Optional[Path] = None
    clebsch_gordan_cache: Optional[Path] = None
    wigner_d_cache: Optional[Path] = None
    tensor_conversion_cache: Optional[Path] = None

    @staticmethod
    def set_cartesian_order(cartesian_order: bool = True) -> None:
        """Set :attr:`Config.cartesian_order`.

        Arguments:
            cartesian_order: New value.
        """
        Config.cartesian_order = cartesian_order

    @staticmethod
    def set_use_fused_tensor(use_fused_tensor: bool = False) -> None:
        """Set :attr:`Config.use_fused_tensor`.

        Arguments:
            use_fused_tensor: New value.
        """
        Config.use_fused_tensor = use_fused_tensor

    @staticmethod
    def set_normalization(normalization: Normalization = "racah") -> None:
        """Set :attr:`Config.normalization`.

        Arguments:
            normalization: ``'racah'``, ``'schmidt'``, ``'4pi'`` or ``'orthonormal'``.

        Raises:
            ValueError: If ``normalization`` is not one of these (e3x's message).
        """
        check_normalization(normalization)
        Config.normalization = normalization

    @staticmethod
    def set_schedule(schedule: str = "auto") -> None:
        """Set :attr:`Config.schedule`: how the contraction engine runs.

        The two schedules compute the same sums in a different order (values and derivatives
        agree to rounding); they differ in speed. ``'cpu'`` runs cache-sized blocks of pairs in
        a loop, with a short in-place loop over Clebsch-Gordan terms inside (on any number of
        cores); ``'gpu'`` runs the whole pair axis at once (blocks only beyond an eighth of the
        device's memory) with every contraction vectorised, so a layer is tens of large kernels
        rather than thousands of small ones. The environment variable
        ``EQX_MP_SCHEDULE=cpu|gpu`` sets the initial value for a whole process.

        The setting becomes part of the programs traced after the call: functions already
        traced by ``jax.jit`` keep the schedule they were traced with (trace them anew, e.g. by
        wrapping again with ``jax.jit`` or ``eqx.filter_jit``, or set the schedule first).

        Arguments:
            schedule: ``'auto'`` (by backend), ``'cpu'`` or ``'gpu'``.

        Raises:
            ValueError: If ``schedule`` is not one of these.

        Example:
            >>> import eqx_mp
            >>> eqx_mp.Config.set_schedule("gpu")     # wide kernels, even on a CPU
            >>> eqx_mp.Config.schedule
            'gpu'
            >>> eqx_mp.Config.set_schedule()           # back to the backend's own
        """
        Config.schedule = check_schedule(schedule)

    @staticmethod
    def set_spherical_harmonics_cache(path: Optional[PathLike] = None) -> None:
        """Set :attr:`Config.spherical_harmonics_cache` (stored only; see the class docstring).

        Arguments:
            path: A path or ``None``.
        """
        Config.spherical_harmonics_cache = None if path is None else Path(path)

    @staticmethod
    def set_clebsch_gordan_cache(path: Optional[PathLike] = None) -> None:
        """Set :attr:`Config.clebsch_gordan_cache` (stored only; see the class docstring).

        Arguments:
            path: A path or ``None``.
        """
        Config.clebsch_gordan_cache = None if path is None else Path(path)

    @staticmethod
    def set_wigner_d_cache(path: Optional[PathLike] = None) -> None:
        """Set :attr:`Config.wigner_d_cache` (stored only; see the class docstring).

        Arguments:
            path: A path or ``None``.
        """
        Config.wigner_d_cache = None if path is None else Path(path)

    @staticmethod
    def set_tensor_conversion_cache(path: Optional[PathLike] = None) -> None:
        """Set :attr:`Config.tensor_conversion_cache` (stored only; see the class docstring).

        Arguments:
            path: A path or ``None``.
        """
        Config.tensor_conversion_cache = None if path is None else Path(path)
