"""MaxPool (moves integers), AvgPool and GlobalAvgPool (window sum, then requantize).

Window reductions come from `windows.window_reduce`, in the narrowest dtype that holds them.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.ops.checks import ContractError, check_product, check_width
from quant.ops.dtypes import narrowest
from quant.ops.registry import reference
from quant.ops.requant import requantize_scratch
from quant.ops.scratch import scratch
from quant.ops.windows import window_reduce


def _value_range(x: np.ndarray, *values: int) -> tuple[int, int]:
    """Bounds on x's values (from its dtype) and on `values`."""
    info = np.iinfo(x.dtype)
    return min(int(info.min), *values), max(int(info.max), *values)


@reference(ir.MaxPool)
def max_pool(op: ir.MaxPool, x: np.ndarray) -> np.ndarray:
    """y = max over the window; padding with `pad_value` (the type's qmin) never wins."""
    dtype = narrowest(*_value_range(x, op.pad_value))
    windows = window_reduce(np.maximum, x, op.kernel, op.strides, op.pads, op.dilations, op.pad_value,
                            dtype, f"MaxPool '{op.name}'")
    return windows.copy()


def _real_counts(size: int, before: int, kernel: int, stride: int, out_size: int) -> np.ndarray:
    """Per output position along one axis, how many of the window's `kernel` elements fall
    inside the unpadded input [0, size); a 2-D window's count is the product of two."""
    starts = np.arange(out_size) * stride - before
    return np.maximum(np.minimum(starts + kernel, size) - np.maximum(starts, 0), 0)


@reference(ir.AvgPool)
def avg_pool(op: ir.AvgPool, x: np.ndarray) -> np.ndarray:
    """acc = sum of (x - z) over the window's real elements; requant with the (M, n) of the
    position's divisor (real-element count, or kh*kw with count_include_pad).

    Padding x with z is padding x - z with 0, so acc = (window sum of x padded with z)
    - z*kh*kw, without a centred copy of x; the window sums need no more than
    kh*kw * max|x| and are taken in the narrowest dtype that holds that."""
    where = f"AvgPool '{op.name}'"
    zero, size = op.input_zero_point, op.kernel[0] * op.kernel[1]
    low, high = _value_range(x, zero)
    sums = window_reduce(np.add, x, op.kernel, op.strides, op.pads, (1, 1), zero,
                         narrowest(min(0, low * size), max(0, high * size)), where)
    acc = scratch("avg_pool.acc", sums.shape, np.int64)
    np.copyto(acc, sums)
    acc -= zero * size
    if op.count_include_pad:
        counts = np.full(acc.shape[2:], size, np.int64)
    else:
        top, left = op.pads[:2]
        counts = np.outer(_real_counts(x.shape[2], top, op.kernel[0], op.strides[0], acc.shape[2]),
                          _real_counts(x.shape[3], left, op.kernel[1], op.strides[1], acc.shape[3]))
    index = np.minimum(np.searchsorted(op.divisors, counts), len(op.divisors) - 1)
    if np.any(op.divisors[index] != counts):
        missing = sorted(set(counts.ravel().tolist()) - set(op.divisors.tolist()))
        raise ContractError(f"{where}: window counts {missing} have no requantizer in divisors "
                            f"{op.divisors.tolist()} (must be sorted and complete)")
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.requant.multiplier, where)
    rq = op.requant
    # one row per image and channel, so the per-position (M, n) broadcast along whole rows
    rows = acc.reshape(-1, index.size)
    y = requantize_scratch(rows, rq.multiplier[index].ravel(), rq.shift[index].ravel(), rq.zero_point,
                           rq.qmin, rq.qmax)
    return y.reshape(acc.shape)


@reference(ir.GlobalAvgPool)
def global_avg_pool(op: ir.GlobalAvgPool, x: np.ndarray) -> np.ndarray:
    """acc[n, c] = sum_{y,x} (x - z) = sum_{y,x} x - z*H*W, kept as (N, C, 1, 1); one
    requantizer (S includes 1/(H*W))."""
    where = f"GlobalAvgPool '{op.name}'"
    acc = x.sum(axis=(2, 3), keepdims=True, dtype=np.int64)
    acc -= op.input_zero_point * x.shape[2] * x.shape[3]
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.requant.multiplier, where)
    rq = op.requant
    return requantize_scratch(acc, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
