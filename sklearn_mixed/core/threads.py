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
_libraries = None
_default_threads = None


def _get_controller():
    """The controller, and BLAS's thread count before any limit of ours."""
    global _controller, _libraries, _default_threads
    if _controller is None:
        _controller = ThreadpoolController()
        _libraries = _controller.select(user_api="blas").lib_controllers
        _default_threads = max((p.num_threads for p in _libraries), default=1)
    return _controller


def _blas_libraries():
    _get_controller()
    return _libraries


@contextlib.contextmanager
def _blas_threads(n):
    """BLAS on ``n`` threads, restored after: the libraries' own setters (a C call
    each; threadpoolctl's ``limit`` rescans the loaded libraries, ~50 us)."""
    libraries = _blas_libraries()
    before = [lib.num_threads for lib in libraries]
    changed = [lib for lib, b in zip(libraries, before, strict=True) if b != n]
    for lib in changed:
        lib.set_num_threads(n)
    try:
        yield
    finally:
        for lib, b in zip(libraries, before, strict=True):
            if lib in changed:
                lib.set_num_threads(b)


def single_blas_thread():
    """Context: BLAS on one thread."""
    return _blas_threads(1)


def all_blas_threads(flops):
    """Context: BLAS on all its threads, for a call of at least ~1e9 flops."""
    if flops < 1e9:
        return contextlib.nullcontext()
    _get_controller()
    return _blas_threads(_default_threads)
