"""Radial basis functions, cutoffs, windows, switches, damping and mappings (e3x's names).

Every function takes a floating-point array ``x`` of any shape ``*batch``; basis functions
return ``(*batch, num)``, the others ``*batch``. All are NaN-free under ``jax.grad`` at the
special points (0, the limit/cutoff, the ends of the switch interval).
"""

from .bernstein import basic_bernstein, exponential_bernstein, reciprocal_bernstein
from .chebyshev import basic_chebyshev, exponential_chebyshev, reciprocal_chebyshev
from .cutoff import cosine_cutoff, smooth_cutoff
from .damping import smooth_damping
from .gaussian import basic_gaussian, exponential_gaussian, reciprocal_gaussian
from .mappings import exponential_mapping, reciprocal_mapping
from .switch import smooth_switch
from .trigonometric import basic_fourier, exponential_fourier, reciprocal_fourier, sinc
from .window import rectangular_window, smooth_window, triangular_window

__all__ = [
    "basic_bernstein",
    "reciprocal_bernstein",
    "exponential_bernstein",
    "basic_chebyshev",
    "reciprocal_chebyshev",
    "exponential_chebyshev",
    "basic_gaussian",
    "reciprocal_gaussian",
    "exponential_gaussian",
    "sinc",
    "basic_fourier",
    "reciprocal_fourier",
    "exponential_fourier",
    "smooth_cutoff",
    "cosine_cutoff",
    "smooth_window",
    "rectangular_window",
    "triangular_window",
    "smooth_switch",
    "smooth_damping",
    "reciprocal_mapping",
    "exponential_mapping",
]
