"""Equivariant neural-network modules and functions (e3x's ``e3x.nn`` names)."""

# --- core modules (lead) ---
# --- end core modules ---

# --- building blocks (helper: functions, basis, activations, embed, features) ---
# --- end building blocks ---
