"""Numerical core: pure functions on arrays (no pandas, no scikit-learn).

One mathematical object per module:

- :mod:`.grouping`: grouping factors, level codes, nesting, the blocks of Z;
- :mod:`.covariance`: relative covariance factors theta <-> T <-> Sigma;
- :mod:`.crossprod`: the cross-products of Henderson's equations, one pass;
- :mod:`.cholesky`: the blocked Cholesky factor of the augmented system;
- :mod:`.deviance`: the profiled (RE)ML deviance and the solution at theta;
- :mod:`.optimize`: the optimizer driver;
- :mod:`.lmm`: the fit that ties them together.
"""

from .grouping import RandomTerm, encode_factor, nesting_pairs
from .lmm import LMMFit, fit_lmm, rank_deficient_columns

__all__ = [
    "LMMFit",
    "RandomTerm",
    "encode_factor",
    "fit_lmm",
    "nesting_pairs",
    "rank_deficient_columns",
]
