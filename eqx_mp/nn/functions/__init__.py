"""Radial basis functions, cutoffs, windows, switches, damping and mappings (e3x's names).

Every function takes ``x`` of any shape ``*batch`` (a number or real array; Python numbers,
booleans and integer arrays are promoted to JAX's default float, as e3x's arithmetic does); basis
functions return ``(*batch, num)``, the others ``*batch``. All are NaN-free under ``jax.grad`` at
the special points (0, the limit/cutoff, the ends of the switch interval).
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
    "basic_chebyshev",
    "basic_fourier",
    "basic_gaussian",
    "cosine_cutoff",
    "exponential_bernstein",
    "exponential_chebyshev",
    "exponential_fourier",
    "exponential_gaussian",
    "exponential_mapping",
    "reciprocal_bernstein",
    "reciprocal_chebyshev",
    "reciprocal_fourier",
    "reciprocal_gaussian",
    "reciprocal_mapping",
    "rectangular_window",
    "sinc",
    "smooth_cutoff",
    "smooth_damping",
    "smooth_switch",
    "smooth_window",
    "triangular_window",
]
