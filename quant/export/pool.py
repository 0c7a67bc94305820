"""MaxPool (window maximum), AvgPool and GlobalAvgPool (window sum, then requantize).

Windows come from one Gather (see `windows`), reduced with int64 ReduceMax/ReduceSum: exact
for any input width, whereas onnxruntime's MaxPool takes only 8-bit integers and its
AveragePool only floats.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.errors import ModelError
from quant.export.arith import centred, requantize
from quant.export.builder import Builder, reshape
from quant.export.registry import lowers
from quant.export.windows import gather_windows, output_size, pad_hw, window_index


@lowers(ir.MaxPool)
def max_pool(op: ir.MaxPool, b: Builder, x: str) -> str:
    """y = max over the window; padding with `pad_value` (the type's qmin) never wins."""
    return _window_reduce(b, op, pad_hw(b, x, op.pads, op.pad_value), "ReduceMax", op.dilations)


@lowers(ir.AvgPool)
def avg_pool(op: ir.AvgPool, b: Builder, x: str) -> str:
    """acc = window sum of (x - z), zero-padded; y = requant with the (M, n) of each output
    position's divisor, given as constant [OH, OW] maps of M and n."""
    acc = _window_reduce(b, op, pad_hw(b, centred(b, x, op.input_zero_point), op.pads, 0),
                         "ReduceSum", (1, 1))
    index = _divisor_index(op, _window_counts(op, b.shapes[op.inputs[0]][1:]))
    rq = op.requant
    return requantize(b, acc, rq.multiplier[index], rq.shift[index], rq.zero_point, rq.qmin, rq.qmax)


@lowers(ir.GlobalAvgPool)
def global_avg_pool(op: ir.GlobalAvgPool, b: Builder, x: str) -> str:
    """acc[n, c] = sum_{y,x} (x - z) kept as (N, C, 1, 1); one requantizer."""
    acc = b.node("ReduceSum", [centred(b, x, op.input_zero_point), b.const([2, 3], "axes")], "acc",
                 keepdims=1)
    rq = op.requant
    return requantize(b, acc, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)


def _window_reduce(b: Builder, op: ir.MaxPool | ir.AvgPool, padded: str, reduce: str,
                   dilations: tuple[int, int]) -> str:
    channels, h, w = b.shapes[op.inputs[0]]
    top, left, bottom, right = op.pads
    size = (h + top + bottom, w + left + right)
    oh, ow = output_size(size, op.kernel, op.strides, dilations)
    cols = gather_windows(b, padded, channels, size, window_index(size, op.kernel, op.strides, dilations))
    pooled = b.node(reduce, [cols, b.const([-1], "axes")], "pooled", keepdims=0)
    return reshape(b, pooled, (channels, oh, ow), "acc")


def _window_counts(op: ir.AvgPool, hw: tuple[int, int]) -> np.ndarray:
    """[OH, OW] divisor of each output: kh*kw with count_include_pad, else the number of
    window elements that fall on the real (unpadded) input."""
    top, left, bottom, right = op.pads
    size = (hw[0] + top + bottom, hw[1] + left + right)
    oh, ow = output_size(size, op.kernel, op.strides, (1, 1))
    if op.count_include_pad:
        return np.full((oh, ow), op.kernel[0] * op.kernel[1], np.int64)
    real = np.zeros(size, np.int64)
    real[top:top + hw[0], left:left + hw[1]] = 1
    index = window_index(size, op.kernel, op.strides, (1, 1))
    return real.ravel()[index].sum(axis=1).reshape(oh, ow)


def _divisor_index(op: ir.AvgPool, counts: np.ndarray) -> np.ndarray:
    """Position of each count in `op.divisors`; a missing divisor is a malformed graph."""
    divisors = np.asarray(op.divisors, np.int64)
    missing = sorted(set(counts.ravel().tolist()) - set(divisors.tolist()))
    if missing:
        raise ModelError(f"AvgPool '{op.name}': window counts {missing} have no requantizer in "
                         f"divisors {divisors.tolist()}")
    return np.array([[divisors.tolist().index(c) for c in row] for row in counts.tolist()], np.int64)
