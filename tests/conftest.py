"""Test-suite settings: hypothesis draws the same examples on every run (CI
verdicts reproducible, no example database written into the tree)."""

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")
