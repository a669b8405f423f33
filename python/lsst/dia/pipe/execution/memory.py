"""Keep freed memory in the process, so that image-sized arrays do not page-fault afresh on every allocation.

glibc's ``malloc`` serves blocks above its mmap threshold (at most 32 MB by default) with fresh ``mmap``
pages and gives them back to the kernel on ``free``; a 4k×4k float32 plane (64 MB) is always such a block.
Image differencing allocates dozens of them per CCD, and every first touch of every page is a page fault:
on a 4k CCD that costs more than the FFTs (Alard-Lupton 1.8 s instead of 1.2 s on this machine kind).
`retain_freed_memory` raises the mmap and trim thresholds so those planes come from the heap and stay
there for the next allocation. The resident size then stays at the process's peak, which a worker
processing CCD after CCD reaches on its first CCD anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["ALLOCATOR_ENVIRONMENT", "retain_freed_memory"]

_LOG = logging.getLogger(__name__)

#: ``mallopt`` parameters (glibc ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Largest value ``mallopt`` takes (a C ``int``) [bytes].
_LIMIT = 2**31 - 1
#: The same settings as glibc tunables, for processes started by others (batch jobs: one ``pipetask`` each).
ALLOCATOR_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(_LIMIT), "MALLOC_TRIM_THRESHOLD_": str(_LIMIT)}


def retain_freed_memory() -> bool:
    """Serve large arrays from the heap and keep freed memory for reuse (glibc only).

    Returns
    -------
    applied : `bool`
        `True` if both ``mallopt`` calls succeeded; `False` on other C libraries (nothing is changed).

    Notes
    -----
    Affects the whole process from the call on; call it once at process start (workers do, in
    `~lsst.dia.pipe.execution.worker.initialize_worker`).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _LOG.debug("No mallopt in this C library: freed memory is returned to the system as usual.")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
