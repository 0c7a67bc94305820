"""Conv and Gemm: an exact integer matmul, the folded bias, then per-channel requantization."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.arith import requantize
from quant.ops.checks import check_product, check_width
from quant.ops.matmul import dot_bound, int_matmul
from quant.ops.registry import reference
from quant.ops.windows import pad_hw, windows


def _requant_channels(acc: np.ndarray, rq: ir.Requant, acc_bits: np.ndarray, where: str,
                     channel_axis: int) -> np.ndarray:
    """Check acc against its proven widths, then y = clamp(((acc*M[c] + 2^(n[c]-1)) >> n[c]) + z)."""
    check_width(acc, acc_bits, where, channel_axis)
    check_product(acc_bits, rq.multiplier, where)
    tail = (1,) * (acc.ndim - 1 - channel_axis % acc.ndim)
    mult = np.asarray(rq.multiplier, np.int64).reshape((-1,) + tail)
    shift = np.asarray(rq.shift, np.int64).reshape((-1,) + tail)
    return requantize(acc, mult, shift, rq.zero_point, rq.qmin, rq.qmax)


@reference(ir.Conv)
def conv(op: ir.Conv, x: np.ndarray) -> np.ndarray:
    """Pad with the input zero point, im2col per group, one batched matmul, bias, requant."""
    c_out, c_group, kh, kw = op.weight.shape
    g = op.group
    cols = windows(pad_hw(x, op.pads, op.pad_value), (kh, kw), op.strides, op.dilations)
    n, _, oh, ow = cols.shape[:4]
    # [N, G, Cg, OH, OW, kh, kw] -> [G, N*OH*OW, Cg*kh*kw]
    cols = cols.reshape(n, g, c_group, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    cols = cols.reshape(g, n * oh * ow, c_group * kh * kw)
    weight_t = op.weight.reshape(g, c_out // g, c_group * kh * kw).transpose(0, 2, 1)
    out = int_matmul(cols, weight_t, dot_bound(cols, weight_t))  # [G, N*OH*OW, Cout/G]
    out = out.reshape(g, n, oh, ow, c_out // g).transpose(1, 0, 4, 2, 3).reshape(n, c_out, oh, ow)
    acc = out + op.bias.reshape(-1, 1, 1)
    return _requant_channels(acc, op.requant, op.acc_bits, f"Conv '{op.name}'", channel_axis=1)


@reference(ir.Gemm)
def gemm(op: ir.Gemm, x: np.ndarray) -> np.ndarray:
    """acc[..., c] = x @ w[c] + bias[c] on the last axis, then per-channel requant."""
    weight_t = op.weight.T
    acc = int_matmul(x, weight_t, dot_bound(x, weight_t)) + op.bias
    return _requant_channels(acc, op.requant, op.acc_bits, f"Gemm '{op.name}'", channel_axis=-1)
