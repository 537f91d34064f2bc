# Copyright (c) scrim-mm contributors. All rights reserved.
"""Keep freed CPU memory in the heap (glibc), as CUDA's allocator does."""

import ctypes
import ctypes.util
import os
from typing import Optional

from mmengine.logging import print_log

__all__ = ['RETAIN_CPU_MEMORY_ENV', 'retain_cpu_memory']

#: The environment variable that switches the setting off: ``0``.
RETAIN_CPU_MEMORY_ENV = 'SCRIM_RETAIN_CPU_MEMORY'
# From glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_OFF = ('0', 'false', 'no', 'off')
_applied = False


def _mallopt():
    """glibc's ``mallopt``, or None on another C library."""
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    mallopt = getattr(libc, 'mallopt', None)
    if mallopt is not None:
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
    return mallopt


def retain_cpu_memory(enable: Optional[bool] = None) -> bool:
    """Make glibc's malloc keep freed memory for reuse.

    By default glibc serves every block above its mmap threshold (at most
    32 MiB) with a fresh ``mmap`` and unmaps it on free, so every training
    step page-faults and zero-fills its large activations again: 2.5 s of
    system time in an 8.5 s ResNet-50 SCRIM step at 448 px on the CPU. No
    mmap (``M_MMAP_MAX=0``) and no trimming (``M_TRIM_THRESHOLD=-1``) turn
    the heap into a cache, as CUDA's caching allocator is; the process then
    keeps its peak heap size. The same as starting the process with
    ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=``
    ``<large>``. Only the allocator changes: results are the same.

    ``tools/train.py``, ``tools/test.py`` and :class:`SCRIMInferencer` call
    it at start-up. It applies to the whole process and stays on.

    Args:
        enable (bool, optional): False does nothing. None reads the
            environment variable ``SCRIM_RETAIN_CPU_MEMORY``: on unless it
            is ``0`` (or ``false``, ``no``, ``off``). Defaults to None.

    Returns:
        bool: Whether the setting is on in this process (False where the C
        library is not glibc; a debug message says so).
    """
    global _applied
    if enable is None:
        value = os.environ.get(RETAIN_CPU_MEMORY_ENV, '1')
        enable = value.strip().lower() not in _OFF
    if not enable or _applied:
        return _applied
    mallopt = _mallopt()
    if mallopt is None:
        print_log(
            'retain_cpu_memory: this C library has no mallopt (not glibc); '
            'the allocator is left as it is.',
            logger='current',
            level=10,
        )
        return False
    _applied = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, -1))
    return _applied
