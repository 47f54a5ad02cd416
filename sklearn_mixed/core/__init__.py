"""Numerical core: pure functions on arrays (no pandas, no scikit-learn).

One mathematical object per module:

- :mod:`.grouping`: grouping factors, level codes, nesting, the blocks of Z;
- :mod:`.structures`: covariance structures, theta <-> T <-> Sigma;
- :mod:`.reduction`: the one data reduction, rows -> cross-products;
- :mod:`.crossprod`: the blocked layout of the cross-products;
- :mod:`.cholesky`: the blocked Cholesky factor of the augmented system;
- :mod:`.dense`: the dense system of a small model;
- :mod:`.deviance`: the profiled (RE)ML deviance and the solution at theta;
- :mod:`.optimize`: the optimizer driver;
- :mod:`.model`: the model object that ties them together;
- :mod:`.profile`, :mod:`.satterthwaite`, :mod:`.influence`: inference on it.
"""

from .grouping import RandomTerm, encode_factor, nesting_pairs
from .model import LinearMixedModel, LMMFit, fit_lmm
from .rank import aliased_columns
from .reduction import ModelRows, Reduction, reduce_rows
from .structures import BlockDiagonal, Diagonal, Unstructured, make_structure

__all__ = [
    "BlockDiagonal",
    "Diagonal",
    "LMMFit",
    "LinearMixedModel",
    "ModelRows",
    "RandomTerm",
    "Reduction",
    "Unstructured",
    "aliased_columns",
    "encode_factor",
    "fit_lmm",
    "make_structure",
    "nesting_pairs",
    "reduce_rows",
]
