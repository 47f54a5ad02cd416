"""Refuse a fit the machine cannot hold, before allocating it.

The exact solver keeps the random effects of every term but the eliminated
ones in a dense block, factored at each evaluation: its memory grows with the
square of their number (two crossed factors of 150,000 and 200,000 levels:
168 GiB).  :func:`check_dense_block` compares what the block needs with what
the machine has free and raises a ``MemoryError`` that says both, instead of
letting numpy try.
"""

import os

__all__ = [
    "DenseBlockTooLarge",
    "ReductionTooLarge",
    "available_memory",
    "check_dense_block",
    "check_reduction",
    "format_bytes",
    "reduction_bytes",
]

# Dense (size x size) arrays alive at once in an evaluation with its gradient:
# the Schur complement, its factor, its inverse and the adjoint.
_DENSE_COPIES = 4
# Blocks below this many bytes are assumed to fit (any machine has 64 MiB free).
_ALWAYS_AVAILABLE = 64 * 2**20
# Fraction of the free memory a fit may plan to use.
_USABLE = 0.8


class DenseBlockTooLarge(MemoryError):
    """The exact solver's dense block does not fit in the free memory.

    ``needs`` is the first sentence of the message (the block, what it needs and
    what is free), without the advice, for callers that advise otherwise.
    """

    def __init__(self, needs, advice):
        super().__init__(f"{needs} {advice}")
        self.needs = needs


def available_memory():
    """Bytes of memory available to this process, or None if unknown.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the physical memory.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n):
    """``"168 GiB"``, ``"512 MiB"``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 2**10:.3g} KiB"


def check_dense_block(size, advice, available=None):
    """Raise :class:`DenseBlockTooLarge` if a dense ``size x size`` block cannot be held.

    Parameters
    ----------
    size : int
        Order of the dense block.
    advice : str
        What to do instead, appended to the message.
    available : int, optional
        Free memory in bytes (default :func:`available_memory`).
    """
    needed = _DENSE_COPIES * 8 * float(size) ** 2
    if available is None:
        if needed <= _ALWAYS_AVAILABLE:  # not worth reading /proc/meminfo
            return
        available = available_memory()
    if available is None or needed <= _USABLE * available:
        return
    raise DenseBlockTooLarge(
        f"the exact solver needs a dense block of {size:,} x {size:,} (the random effects "
        f"of the crossed terms it cannot eliminate level by level, plus the fixed effects): "
        f"about {format_bytes(needed)} of memory, and this machine has "
        f"{format_bytes(available)} free.",
        advice,
    )


class ReductionTooLarge(MemoryError):
    """The reduced system (the cross-products) does not fit where it is summed."""


# Reductions alive at once where the last two are summed: both halves and the sum.
_REDUCTION_COPIES = 3


def reduction_bytes(n, p, sizes):
    """Bytes of a reduction (:mod:`.reduction`) of ``n`` rows, ``p`` fixed columns
    and terms of ``sizes`` ``(levels, coefficients)``, at most.

    Per term and level ``k^2 + k p + k + 4`` floats; per pair of terms one CSR
    table of ``Z_f'WZ_g`` and one of counts, with at most ``min(n, m_f m_g)``
    cells of ``k_f k_g`` entries (8-byte value, 4-byte index).
    """
    total = 8 * (p * p + p)
    for m, k in sizes:
        total += 8 * m * (k * k + k * p + k + 4)
    for f, (mf, kf) in enumerate(sizes):
        for mg, kg in sizes[f + 1 :]:
            cells = min(n, mf * mg)
            total += 12 * cells * (kf * kg + 1) + 8 * (mf * kf + 1)
    return total


def check_reduction(n, p, sizes, available=None):
    """Raise :class:`ReductionTooLarge` when the reduction of a model cannot be
    held where it is summed, before any row is reduced."""
    available = available_memory() if available is None else available
    needs = _REDUCTION_COPIES * reduction_bytes(n, p, sizes)
    if available is None or needs <= max(_USABLE * available, _ALWAYS_AVAILABLE):
        return
    levels = " x ".join(f"{m:,}" for m, _ in sizes)
    raise ReductionTooLarge(
        f"the reduced system of {n:,} rows with grouping factors of {levels} levels needs up to "
        f"{format_bytes(needs)} (its tables of pairs of levels have up to one cell per row), "
        f"and {format_bytes(available)} is available where it is summed. It does not fit: "
        "fit a factor with fewer levels (merge rare levels), a random sample of the rows, or "
        "the factors one at a time; the levels of two factors that meet in few cells (nested "
        "or nearly nested) fit in far less."
    )
