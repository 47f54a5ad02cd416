"""Fitting from chunks of rows: the levels seen so far and the running reduction.

A linear mixed model reads its rows only through sums over them
(:mod:`sklearn_mixed.core.reduction`), so chunks can be reduced one at a time,
in any order and on any machine, and their reductions added.  What chunks
must agree on is the coding of the grouping factors: a
:class:`RowStream` keeps, per factor, the levels in the order first seen; a
chunk codes its labels against them (adding new ones), and its reduction,
sized for all levels so far, is added to the running one, whose sums for
the new levels are 0 (:meth:`~sklearn_mixed.core.Reduction.relevel`).
:meth:`RowStream.design` sorts the levels as ``fit`` does and returns the
design the estimators fit, so that ``partial_fit`` over chunks and ``fit`` on
their concatenation fit the same reduction (up to the order of the sums).

The Dask path (:mod:`._dask`) uses the same object with the levels known
beforehand (one pass over the grouping columns): every partition is coded
and reduced by :meth:`RowStream.reduce_chunk` on a worker.
"""

import numpy as np
import pandas as pd

from ._design import NotIdentifiable, chunk_rows, encode_labels, finish_design, random_term

__all__ = ["RowStream"]


class RowStream:
    """Levels and reduction of the chunks of one model; see the module docstring.

    Parameters
    ----------
    factor_names : list of str
        The grouping factors, in the model's order (may be empty).
    specs : dict of str -> RandomSpec
        Each factor's random effects.
    columns, names : list
        The fixed-effects columns (``None`` for the intercept, else a
        feature index) and their names (:func:`~._design.fixed_columns`).
    levels : list of array-like, optional
        Every factor's levels, when known beforehand (a Dask collection's
        level pass): a chunk with another label is then an error.
    """

    def __init__(self, factor_names, specs, columns, names, levels=None):
        self.factor_names = list(factor_names)
        self.specs = specs
        self.columns = list(columns)
        self.names = list(names)
        self.closed = levels is not None
        self.levels = [None] * len(self.factor_names)
        if levels is not None:
            self.levels = [pd.Index(lev) for lev in levels]
        self.reduction = None  # of all chunks added, levels in ``self.levels`` order
        self._tables = {}  # factor -> (its levels, lowest, lookup table) of _positions

    # ---------------------------------------------------------------- chunks
    def code(self, labels):
        """``(name, codes, levels)`` per factor for the rows' ``labels``; levels
        not seen before are appended (a closed stream refuses them)."""
        coded = []
        for i, (name, lab) in enumerate(zip(self.factor_names, labels, strict=True)):
            known = self.levels[i]
            if known is not None and not isinstance(known, pd.Index):  # as fit left them
                known = self.levels[i] = pd.Index(known)
            codes = np.full(len(lab), -1, dtype=np.intp)
            if known is not None:
                codes = self._positions(i, lab)
            new = codes < 0
            if new.any():
                if self.closed:
                    raise ValueError(
                        f"grouping factor {name!r} has labels not found by the level pass, e.g. "
                        f"{lab[new][0]!r}: the data changed between the two passes"
                    )
                fresh = pd.Index(pd.unique(np.asarray(lab)[new]))
                self.levels[i] = fresh if known is None else known.append(fresh)
                codes[new] = self.levels[i].get_indexer(np.asarray(lab)[new])
            coded.append((name, codes.astype(np.intp, copy=False), self.levels[i]))
        return coded

    def _positions(self, i, labels):
        """Index of each label among factor ``i``'s levels (-1: not among them):
        for integer levels spanning a few times their number, a lookup table
        (built once per set of levels), else pandas' hash table."""
        known = self.levels[i]
        labels = np.asarray(labels)
        if known.dtype.kind not in "iu" or labels.dtype.kind not in "iu" or not len(known):
            return known.get_indexer(labels)
        cached = self._tables.get(i)
        if cached is None or cached[0] is not known:
            low, high = int(known.min()), int(known.max())
            table = None
            if high - low <= 4 * len(known) + 1024:
                table = np.full(high - low + 1, -1, dtype=np.intp)
                table[known.to_numpy() - low] = np.arange(len(known))
            cached = self._tables[i] = (known, low, table)
        _, low, table = cached
        if table is None:
            return known.get_indexer(labels)
        offset = labels.astype(np.int64) - low
        inside = (offset >= 0) & (offset < table.size)
        return np.where(inside, table[np.where(inside, offset, 0)], -1)

    def reduce_chunk(self, X, y, labels, weights):
        """The :class:`~sklearn_mixed.core.Reduction` of one chunk of validated
        rows (weights positive or None), sized for the levels known after it."""
        coded = self.code(labels)
        rows = chunk_rows(X, y, coded, weights, specs=self.specs, columns=self.columns)
        return rows.reduce()

    def add(self, X, y, labels, weights):
        """Reduce a chunk and add it to the running reduction."""
        if len(y) == 0:  # an empty chunk (or of weight 0 only) adds nothing
            return
        part = self.reduce_chunk(X, y, labels, weights)
        self.add_reduction(part)

    def add_reduction(self, part):
        """Add a chunk's reduction (levels coded by this stream)."""
        if self.reduction is None:
            self.reduction = part
            return
        self.reduction = self._padded(self.reduction) + self._padded(part)

    def _padded(self, reduction):
        """``reduction`` with room for every level known now (zero sums)."""
        for i, lev in enumerate(self.levels):
            m = reduction.terms[i].n_levels
            if m < len(lev):
                reduction = reduction.relevel(i, np.arange(m), len(lev))
        return reduction

    # ---------------------------------------------------------------- design
    def design(self, *, fixed_sigma=None, residual=True):
        """The :class:`~._design.FittedDesign` of all chunks, levels sorted as
        ``fit`` sorts them; raises :class:`~._design.NotIdentifiable` when
        the rows so far cannot identify the model."""
        if self.reduction is None or self.reduction.n == 0:
            raise NotIdentifiable("no rows with positive weight were given: nothing to fit.")
        reduction, terms = self.reduction, []
        for i, name in enumerate(self.factor_names):
            positions, levels = encode_labels(np.asarray(self.levels[i]))
            if not np.array_equal(positions, np.arange(positions.size)):
                reduction = reduction.relevel(i, positions, len(levels))
            terms.append(random_term(name, self.specs[name], levels))
            self.levels[i] = levels  # sorted; an Index again when a chunk is coded
        # keep the sorted sums: the model shares them (no second copy)
        self.reduction = reduction
        return finish_design(
            reduction, terms, self.columns, self.names, self.specs,
            fixed_sigma=fixed_sigma, residual=residual,
        )  # fmt: skip

    def reopened(self):
        """This stream, open to levels new in later chunks (after a Dask fit)."""
        self.closed = False
        return self

    @classmethod
    def of_design(cls, design):
        """The stream of a design fitted in memory, to continue with ``partial_fit``."""
        names = [t.name for t in design.terms]
        stream = cls(names, design.specs, design.all_columns, design.all_names)
        # the levels' arrays: made an Index by the first chunk (fit need not pay)
        stream.levels = [design.levels[name] for name in names]
        stream.reduction = design.full_reduction
        return stream
