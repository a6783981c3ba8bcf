"""SO(3) maths: Clebsch-Gordan coefficients, spherical harmonics, Wigner-D matrices, rotations,
quadratures on the sphere, and traceless symmetric tensor <-> irreps conversion.

Pure numpy/JAX, computed from scratch, with e3x's public names, argument names and layouts.
Row-vector convention throughout (as in e3x): vectors rotate as ``r @ rot`` and irreps as
``x @ wigner_d(rot, L)``.
"""

from .._checks import Normalization
from .clebsch_gordan import clebsch_gordan, clebsch_gordan_for_degrees
from .harmonics import solid_harmonics, spherical_harmonics
from .quadrature import delley_quadrature, lebedev_quadrature
from .rotations import (
    alignment_rotation,
    euler_angles_from_rotation,
    random_rotation,
    rotation,
    rotation_euler,
    wigner_d,
)
from .tensor_conversion import irreps_to_tensor, is_traceless_symmetric, tensor_to_irreps

__all__ = [
    "Normalization",
    "alignment_rotation",
    "clebsch_gordan",
    "clebsch_gordan_for_degrees",
    "delley_quadrature",
    "euler_angles_from_rotation",
    "irreps_to_tensor",
    "is_traceless_symmetric",
    "lebedev_quadrature",
    "random_rotation",
    "rotation",
    "rotation_euler",
    "solid_harmonics",
    "spherical_harmonics",
    "tensor_to_irreps",
    "wigner_d",
]
