"""The hyper-parameters of :class:`~eqx_mp.models.Potential`, listed once."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._checks import check_int

__all__ = ["PRESETS", "RADIAL_BASES", "PotentialConfig"]


#: Radial basis functions :class:`Potential` accepts (names in :mod:`eqx_mp.nn`). The
#: ``basic_*`` and ``sinc`` functions are spread over ``[0, cutoff]``.
RADIAL_BASES = (
    "reciprocal_bernstein",
    "reciprocal_gaussian",
    "reciprocal_chebyshev",
    "basic_bernstein",
    "basic_gaussian",
    "basic_chebyshev",
    "basic_fourier",
    "sinc",
)


#: Named model sizes (``python -m eqx_mp.train --preset NAME``): :class:`PotentialConfig` fields.
#: ``e3x`` is e3x's MD17 example (two-body messages); the others add products of the messages
#: (higher body order), a radial MLP and degree 2 (``medium``) or 3 (``large``), trading speed
#: for accuracy. ``small`` is the training command's default (the most accurate at equal wall
#: time on the embedded Cu/Pt sets, 150-600 s); ``medium`` is the more accurate on DFT molecules
#: (ethanol, 3BPA) from 300 s to four hours (validation splits; ``docs/accuracy.md``).
PRESETS: dict[str, dict[str, Any]] = {
    "e3x": dict(features=32, max_degree=1, num_basis=16, num_iterations=2, correlation=1,
                radial_mlp=0),
    "small": dict(features=32, max_degree=1, num_basis=16, num_iterations=2, correlation=2,
                  radial_mlp=32),
    "medium": dict(features=32, max_degree=2, num_basis=8, num_iterations=2, correlation=3,
                   radial_mlp=64),
    "large": dict(features=64, max_degree=3, num_basis=8, num_iterations=2, correlation=3,
                  radial_mlp=64),
}


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class PotentialConfig:
    """The hyper-parameters of a :class:`Potential`: listed, defaulted, documented and checked once.

    Each field's ``metadata["help"]`` is its one-line description (command-line tools generate
    their flags from :func:`dataclasses.fields` of this class).

    Arguments:
        features: Number of feature channels ``F``.
        max_degree: Maximum degree ``L`` of the features and of the pair basis.
        num_basis: Number of radial functions ``K``.
        cutoff: Cutoff radius in Å (pairs further apart do not interact).
        num_iterations: Number of message-passing blocks ``T`` (>= 1).
        max_atomic_number: Largest atomic number the embedding accepts.
        radial_basis: Name of the radial functions in :mod:`eqx_mp.nn` (one of
            :data:`RADIAL_BASES`). The default ``basic_gaussian`` learned the demo data several
            times faster than e3x's usual ``reciprocal_bernstein``.
        correlation: Body order of each block: 1 = two-body messages (e3x's example); 2 or 3 =
            products of the aggregated messages with themselves (MACE's correlation order: up to
            three- or four-body features per block).
        radial_mlp: Hidden width of the learned filter on the radial functions (0 = none).
        elements: Atomic numbers the model was trained on (``None``: any in
            ``1..max_atomic_number``); host-side entry points reject other elements.

    Raises:
        TypeError, ValueError: For a value of the wrong type or out of range (with the value).
    """

    features: int = _field(32, "feature channels F")
    max_degree: int = _field(1, "maximum degree L of the features and of the pair basis")
    num_basis: int = _field(16, "number of radial basis functions K")
    cutoff: float = _field(6.0, "cutoff radius (Å); pairs further apart do not interact")
    num_iterations: int = _field(2, "number of message-passing blocks")
    max_atomic_number: int = _field(118, "largest atomic number the embedding accepts")
    radial_basis: str = _field("basic_gaussian", "radial functions (a name in eqx_mp.nn)")
    correlation: int = _field(1, "body order per block: 1 = two-body messages (e3x), 2-3 = "
                              "products of the messages with themselves (MACE-style)")
    radial_mlp: int = _field(0, "hidden width of the MLP filter on the radial functions (0 = none)")
    elements: tuple[int, ...] | None = _field(None, "atomic numbers the model knows (None: all)")

    def __post_init__(self) -> None:
        for name, minimum in (("features", 1), ("max_degree", 0), ("num_basis", 1),
                              ("num_iterations", 1), ("max_atomic_number", 1),
                              ("correlation", 1), ("radial_mlp", 0)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=minimum))
        if self.radial_basis not in RADIAL_BASES:
            raise ValueError(
                f"radial_basis must be one of {sorted(RADIAL_BASES)}, got {self.radial_basis!r}"
            )
        if isinstance(self.cutoff, bool) or not self.cutoff > 0:
            raise ValueError(f"cutoff must be > 0 (Å), got {self.cutoff}")
        object.__setattr__(self, "cutoff", float(self.cutoff))
        if self.elements is not None:
            el = tuple(sorted({int(z) for z in self.elements}))
            if not el or el[0] < 1 or el[-1] > self.max_atomic_number:
                raise ValueError(f"elements must be atomic numbers in 1..max_atomic_number="
                                 f"{self.max_atomic_number}, got {list(self.elements)}")
            object.__setattr__(self, "elements", el)
