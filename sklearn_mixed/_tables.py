"""Result tables that print whole.

pandas cuts and wraps a printed DataFrame to ``pd.options.display.width``,
``max_columns`` and ``max_rows``; an ``anova`` table shown as ``npar ...
Pr(>Chisq)`` hides the numbers it exists for.  :class:`ResultTable` is a
DataFrame (indexing, ``.loc``, arithmetic and comparisons unchanged) whose
printed form is always the full table, as R prints lme4's and lmerTest's
tables.  The model-comparison and test tables are returned as one.
"""

import pandas as pd

__all__ = ["ResultTable"]


class ResultTable(pd.DataFrame):
    """A DataFrame whose ``print``/``repr`` and notebook display show every row
    and column, whatever pandas' display options.

    Frames derived from it (``round``, ``drop``, ``loc`` slices) are result
    tables too; ``pd.DataFrame(table)`` gives a plain DataFrame.
    """

    @property
    def _constructor(self):
        return ResultTable

    def __repr__(self):
        return self.to_string()

    def _repr_html_(self):
        with pd.option_context("display.max_rows", None, "display.max_columns", None):
            return super()._repr_html_()
