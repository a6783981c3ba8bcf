"""SO(3) maths: Clebsch-Gordan coefficients, spherical harmonics, Wigner-D matrices, rotations.

Pure numpy/JAX, computed from scratch, with e3x's public names, argument names and layouts.
"""

from .clebsch_gordan import clebsch_gordan, clebsch_gordan_for_degrees

__all__ = ["clebsch_gordan", "clebsch_gordan_for_degrees"]
