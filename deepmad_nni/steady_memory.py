"""Timing without page faults: ask glibc's malloc to keep the memory a forward frees.

By default glibc serves large tensors with ``mmap`` and returns freed heap memory to the kernel, so a forward
that allocates a tensor may page-fault on every page of it.  On this package's test VM a page fault costs
microseconds: a 7x7 depthwise conv at 112 px took 0.5 ms without faults and 2-3 ms with its ~550 faults per
call, and whether a timing faulted depended on the allocator's history, not on the layer.  Latency tables and
the end-to-end checks are measured with the memory kept (``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` raised
to 1 GiB, the setting PyTorch CPU-inference guides reach with ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` or with jemalloc/tcmalloc); deploy under the same setting to see the predicted latency.
The setting is process-wide and stays for the life of the process.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30


def keep_freed_memory() -> str:
    """Apply the setting where glibc is the allocator; the allocator setting now: ``"glibc-keep"`` or
    ``"default"`` (another libc, or mallopt refused)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        ok = libc is not None and hasattr(libc, "mallopt") and \
            libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) == 1 and libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1
    except OSError:
        ok = False
    return "glibc-keep" if ok else "default"
