"""The golden kernels, keyed by integer-IR class (never by an op_type string).

A kernel is a plain numpy function `fn(op, *inputs) -> output`: int64 arrays, batch axis
first, one output. `quant.ops` imports every kernel module, so looking a kernel up through
`quant.ops.kernel_for` always sees the full table.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quant import ir

Kernel = Callable[..., np.ndarray]

KERNELS: dict[type[ir.Op], Kernel] = {}


def reference(op_class: type[ir.Op]) -> Callable[[Kernel], Kernel]:
    """Register the decorated function as the golden kernel of `op_class` (once)."""

    def register(fn: Kernel) -> Kernel:
        if op_class in KERNELS:
            raise ValueError(f"two golden kernels for {op_class.__name__}")
        KERNELS[op_class] = fn
        return fn

    return register
