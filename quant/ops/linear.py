"""Conv and Gemm: an exact integer matmul, the folded bias, then per-channel requantization.

Both compute channel-major, weight @ input: the output channels come out as the slow axis,
so the per-channel bias, width check and requantizer run in place over long contiguous
runs. The results are returned as views in NCHW (Conv) or channel-last (Gemm) order.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quant import ir
from quant.ops.checks import check_product, check_width
from quant.ops.matmul import channel_sums, dot_bound, exact_dtype, exact_matmul, magnitude
from quant.ops.registry import reference
from quant.ops.requant import requantize_scratch
from quant.ops.scratch import scratch
from quant.ops.windows import output_size, unroll

CHUNK_BYTES = 2 << 20  # unrolled input per matmul: a few MiB of scratch, a few numpy calls


def _requant_channels(acc: np.ndarray, op: ir.Conv | ir.Gemm, layout: Callable[[np.ndarray], np.ndarray],
                      channel_axis: int) -> np.ndarray:
    """acc[c, ...] += bias[c]; check acc against its proven widths; then
    y = clamp(((acc*M[c] + 2^(n[c]-1)) >> n[c]) + z). `acc` is channel-major int64 scratch;
    `layout` maps it to the output's layout (channels on `channel_axis`), in which the
    result is returned and errors name indices."""
    where, rq = f"{type(op).__name__} '{op.name}'", op.requant
    tail = (1,) * (acc.ndim - 1)
    acc += op.bias.reshape((-1,) + tail)
    check_width(layout(acc), op.acc_bits, where, channel_axis)
    check_product(op.acc_bits, rq.multiplier, where)
    mult = np.asarray(rq.multiplier, np.int64).reshape((-1,) + tail)
    shift = np.asarray(rq.shift, np.int64).reshape((-1,) + tail)
    return layout(requantize_scratch(acc, mult, shift, rq.zero_point, rq.qmin, rq.qmax))


@reference(ir.Conv)
def conv(op: ir.Conv, x: np.ndarray) -> np.ndarray:
    """Unroll the padded input (`windows.unroll`) and multiply by the weights per group, in
    the narrowest exact dtype (`matmul.exact_dtype`, bounded by the weights and max|x|
    including the padding value), a few images at a time so the unrolled block stays
    small; then bias and per-channel requant."""
    c_out, c_group, kh, kw = op.weight.shape
    (sh, sw), (dh, dw), (top, left, bottom, right) = op.strides, op.dilations, op.pads
    g = op.group
    peak = max(magnitude(x), abs(op.pad_value) if any(op.pads) else 0)
    dtype = exact_dtype(dot_bound(peak, channel_sums(op.weight)))
    weight = op.weight.reshape(g, c_out // g, c_group * kh * kw).astype(dtype)
    acc = scratch("linear.acc", (c_out, len(x), output_size(x.shape[2], top, bottom, kh, sh, dh),
                                 output_size(x.shape[3], left, right, kw, sw, dw)), np.int64)
    step = max(1, CHUNK_BYTES // max(1, x[:1].size * kh * kw * dtype.itemsize))
    for start in range(0, len(x), step):
        part = unroll(x[start:start + step], (kh, kw), op.strides, op.pads, op.dilations, op.pad_value,
                      dtype, f"Conv '{op.name}'")
        cols = part.cols.reshape(g, c_group * kh * kw, -1)
        product = scratch("conv.product", (g, c_out // g, cols.shape[-1]), dtype)
        exact_matmul(weight, cols, dtype, out=product)
        np.copyto(acc[:, start:start + step], part.outputs(product.reshape(c_out, -1)), casting="unsafe")
    return _requant_channels(acc, op, lambda a: a.transpose(1, 0, 2, 3), channel_axis=1)


@reference(ir.Gemm)
def gemm(op: ir.Gemm, x: np.ndarray) -> np.ndarray:
    """acc[..., c] = x @ w[c] + bias[c] on the last axis, then per-channel requant."""
    rows = x.reshape(-1, x.shape[-1])
    dtype = exact_dtype(dot_bound(magnitude(x), channel_sums(op.weight)))
    acc = scratch("linear.acc", (len(op.weight), len(rows)), np.int64)
    np.copyto(acc, exact_matmul(op.weight, rows.T, dtype), casting="unsafe")  # exact integers
    shape = x.shape[:-1] + (len(op.weight),)
    return _requant_channels(acc, op, lambda a: a.T.reshape(shape), channel_axis=-1)
