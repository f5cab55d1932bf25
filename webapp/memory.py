"""Giving freed memory back to the system (glibc malloc), so a worker's RSS returns after a large image."""
from __future__ import annotations

import ctypes
import functools
import logging

log = logging.getLogger(__name__)

# mallopt() parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Blocks from 1 MB up get their own mmap, unmapped as soon as they are freed. glibc's default threshold starts at
# 128 kB but rises to each freed mmapped block's size (up to 32 MB), after which a large photo's buffers come from the
# heap and stay resident after they are freed: measured, a 36 MP upload left a worker 190-325 MB larger.
MMAP_THRESHOLD = 1024 * 1024
# glibc gives threads up to 8 arenas per core, each keeping its own free memory: with 16 request threads a worker's RSS
# grew to 120-170 MB under load; 2 arenas kept it at 110-116 MB at the same throughput (benchmarks/api_bench.py).
ARENA_MAX = 2


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (musl, macOS): then these calls do nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc() -> bool:
    """Make large allocations mmapped (returned on free) and cap the number of malloc arenas; call once per worker
    process, before its request threads start. False without glibc."""
    libc = _libc()
    if libc is None:
        log.info("not glibc: malloc left as it is")
        return False
    ok = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
          and libc.mallopt(_M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD) == 1 and libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1)
    if not ok:
        log.warning("mallopt refused the mmap/trim thresholds or the arena cap")
    return ok


def release_memory() -> None:
    """Return the free memory of all malloc arenas to the system (after a large request)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
