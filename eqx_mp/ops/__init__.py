"""Indexed operations: gathers, indexed sums, pairwise index helpers (e3x's ``e3x.ops`` names)."""
