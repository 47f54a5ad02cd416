"""Numerical core: pure functions on arrays (no pandas, no scikit-learn).

One mathematical object per module:

- :mod:`.grouping`: grouping factors, level codes, nesting, the blocks of Z;
- :mod:`.structures`: covariance structures, theta <-> T <-> Sigma;
- :mod:`.reduction`: the one data reduction, rows -> cross-products;
- :mod:`.rank`: aliased fixed-effect columns, on the reduction;
- :mod:`.layout`: theta per term, and the terms' elimination order;
- :mod:`.crossprod`: the blocked layout of the cross-products;
- :mod:`.cholesky`: the blocked Cholesky factor of the augmented system;
- :mod:`.single`, :mod:`.paired`, :mod:`.dense`, :mod:`.schur`: faster
  evaluations of the same factor for one term, for one eliminated term with
  dense ones, for a small model, for crossed intercepts;
- :mod:`.deviance`, :mod:`.gradient`: the profiled (RE)ML deviance, its
  gradient and the solution at theta;
- :mod:`.start`, :mod:`.optimize`, :mod:`.bfgs`: starting values and the
  optimizer;
- :mod:`.model`: the model object that ties them together, and
  :mod:`.solution` its result;
- :mod:`.iterative`: the approximate solver for huge crossed intercepts;
- :mod:`.family`, :mod:`.glmm_state`, :mod:`.glmm`: generalized linear mixed
  models as reweighted linear ones (PIRLS), with :mod:`.laplace_gradient`,
  :mod:`.penalized_system` and :mod:`.quadrature` for their criterion;
- :mod:`.profile`, :mod:`.satterthwaite`, :mod:`.influence`: inference on it.
"""

from .glmm import GeneralizedLinearMixedModel
from .grouping import RandomTerm, encode_factor, nesting_pairs
from .model import LinearMixedModel, fit_lmm
from .rank import aliased_columns
from .reduction import Reduction, reduce_rows
from .rows import ModelRows
from .solution import LMMFit
from .structures import BlockDiagonal, Diagonal, Unstructured, make_structure

__all__ = [
    "BlockDiagonal",
    "Diagonal",
    "GeneralizedLinearMixedModel",
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
