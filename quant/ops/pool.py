"""MaxPool (moves integers), AvgPool and GlobalAvgPool (window sum, then requantize)."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.arith import requantize
from quant.ops.checks import ContractError, check_product, check_width
from quant.ops.registry import reference
from quant.ops.windows import pad_hw, windows


@reference(ir.MaxPool)
def max_pool(op: ir.MaxPool, x: np.ndarray) -> np.ndarray:
    """y = max over the window; padding with `pad_value` (the type's qmin) never wins."""
    padded = pad_hw(x, op.pads, op.pad_value)
    return windows(padded, op.kernel, op.strides, op.dilations).max(axis=(-2, -1))


@reference(ir.AvgPool)
def avg_pool(op: ir.AvgPool, x: np.ndarray) -> np.ndarray:
    """acc = sum of (x - z) over the window's real elements; requant with the (M, n) of the
    position's divisor (real-element count, or kh*kw with count_include_pad)."""
    where = f"AvgPool '{op.name}'"
    centred = pad_hw(x - op.input_zero_point, op.pads, 0)
    acc = windows(centred, op.kernel, op.strides).sum(axis=(-2, -1))
    if op.count_include_pad:
        counts = np.full(acc.shape[2:], op.kernel[0] * op.kernel[1], np.int64)
    else:
        real = pad_hw(np.ones((1, 1) + x.shape[2:], np.int64), op.pads, 0)
        counts = windows(real, op.kernel, op.strides).sum(axis=(-2, -1))[0, 0]
    index = np.minimum(np.searchsorted(op.divisors, counts), len(op.divisors) - 1)
    if np.any(op.divisors[index] != counts):
        missing = sorted(set(counts.ravel().tolist()) - set(op.divisors.tolist()))
        raise ContractError(f"{where}: window counts {missing} have no requantizer in divisors "
                            f"{op.divisors.tolist()} (must be sorted and complete)")
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.requant.multiplier, where)
    rq = op.requant
    return requantize(acc, rq.multiplier[index], rq.shift[index], rq.zero_point, rq.qmin, rq.qmax)


@reference(ir.GlobalAvgPool)
def global_avg_pool(op: ir.GlobalAvgPool, x: np.ndarray) -> np.ndarray:
    """acc[n, c] = sum_{y,x} (x - z), kept as (N, C, 1, 1); one requantizer (S includes 1/(H*W))."""
    where = f"GlobalAvgPool '{op.name}'"
    acc = (x - op.input_zero_point).sum(axis=(2, 3), keepdims=True)
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.requant.multiplier, where)
    rq = op.requant
    return requantize(acc, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
