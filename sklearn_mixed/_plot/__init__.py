"""The displays of :mod:`sklearn_mixed.inspection` (private modules, re-exported there)."""
