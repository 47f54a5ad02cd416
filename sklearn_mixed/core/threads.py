"""BLAS thread policy.

On this kind of workload, multithreaded BLAS helps only large level-3 calls
(a dense syrk of 1e3 x 1e4); for the many small calls of an optimizer loop,
and for LAPACK's Cholesky and triangular inverse, waiting threads cost far
more than they save when the machine is busy (a 1144 x 1144 Cholesky: 22 ms on
one thread, 560 ms on two with the other core busy).  The fit therefore runs
on one BLAS thread, and only the large products ask for all threads back.
"""

import contextlib

from threadpoolctl import ThreadpoolController

__all__ = ["all_blas_threads", "single_blas_thread"]

_controller = None
_default_threads = None


def _get_controller():
    """The controller, and BLAS's thread count before any limit of ours."""
    global _controller, _default_threads
    if _controller is None:
        _controller = ThreadpoolController()
        counts = [p.num_threads for p in _controller.select(user_api="blas").lib_controllers]
        _default_threads = max(counts, default=1)
    return _controller


def single_blas_thread():
    """Context: BLAS on one thread."""
    return _get_controller().limit(limits=1, user_api="blas")


def all_blas_threads(flops):
    """Context: BLAS on all its threads, for a call of at least ~1e9 flops."""
    if flops < 1e9:
        return contextlib.nullcontext()
    controller = _get_controller()
    return controller.limit(limits=_default_threads, user_api="blas")
