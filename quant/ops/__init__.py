"""The golden integer kernels, one module per operator family, keyed by integer-IR class.

Every kernel module is imported here explicitly, so `kernel_for` sees them all.
"""
from __future__ import annotations

from quant import ir
from quant.ops import classify, elementwise, layout, linear, pool  # noqa: F401  (registers kernels)
from quant.ops.registry import KERNELS, Kernel


def kernel_for(op: ir.Op) -> Kernel:
    """The golden kernel of `op`'s class."""
    try:
        return KERNELS[type(op)]
    except KeyError:
        raise NotImplementedError(f"no golden kernel for {type(op).__name__} '{op.name}'") from None
