"""Reusable memory for the kernels' large temporaries (accumulators, unrolled inputs).

Fresh numpy memory is page-faulted in by the OS on first touch, which on the benchmark
machine costs about 1 us per 4 KiB page: more than the arithmetic done on it. glibc hands
large freed blocks back to the OS, so a kernel allocating its temporaries afresh pays that on
every call. Kernels take temporaries from here instead, and allocate only their outputs.

Rules that keep this safe: a scratch array's content is garbage until written; a kernel never
returns a scratch array or a view of one (outputs are fresh arrays); and each (thread, slot)
owns one buffer, so temporaries alive at the same time use different slots. Buffers grow to
the largest request up to `KEEP_BYTES` (a thread keeps at most that per slot, about fifteen
slots); larger requests are served fresh and not kept.
"""
from __future__ import annotations

import math
import threading

import numpy as np

KEEP_BYTES = 16 << 20
_LOCAL = threading.local()


def scratch(slot: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialized C-contiguous array of `shape` and `dtype`, reused between calls."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    buffers: dict[str, np.ndarray] = _LOCAL.__dict__.setdefault("buffers", {})
    buffer = buffers.get(slot)
    if buffer is None or buffer.nbytes < size:
        buffer = np.empty(max(size, 1), np.uint8)
        if size <= KEEP_BYTES:
            buffers[slot] = buffer
    return buffer[:size].view(dtype).reshape(shape)
