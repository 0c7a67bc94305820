"""Conv and Gemm as int64 MatMul (exact on every CPU), the folded bias, then requantization.

onnxruntime's ConvInteger and MatMulInteger take only 8-bit operands and, on AVX2 without
VNNI, the u8 x s8 path sums pairs of products in saturating 16-bit lanes; int64 MatMul is a
plain Eigen integer product (wrapping arithmetic, and the quantizer's acc_bits prove there
is nothing to wrap), so it is exact for every operand width on every x86 or ARM CPU.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.export.arith import requantize
from quant.export.builder import Builder, reshape
from quant.export.registry import lowers
from quant.export.windows import gather_windows, output_size, pad_hw, window_index


@lowers(ir.Conv)
def conv(op: ir.Conv, b: Builder, x: str) -> str:
    """Pad with the input zero point, gather windows, one grouped MatMul, bias, requant.

    [N, Cin, P, K] -> [N, G, P, Cg*K] @ W^T [G, Cg*K, Cout/G] -> [N, Cout, OH, OW]
    with P = OH*OW window positions and K = kh*kw window elements.
    """
    c_out, c_group, kh, kw = op.weight.shape
    g = op.group
    c_in, h, w = b.shapes[op.inputs[0]]
    top, left, bottom, right = op.pads
    size = (h + top + bottom, w + left + right)
    oh, ow = output_size(size, (kh, kw), op.strides, op.dilations)
    cols = gather_windows(b, pad_hw(b, x, op.pads, op.pad_value), c_in, size,
                          window_index(size, (kh, kw), op.strides, op.dilations))
    cols = reshape(b, cols, (g, c_group, oh * ow, kh * kw), "grouped")
    cols = b.node("Transpose", [cols], "cols_t", perm=[0, 1, 3, 2, 4])
    cols = reshape(b, cols, (g, oh * ow, c_group * kh * kw), "cols")
    weight_t = op.weight.reshape(g, c_out // g, c_group * kh * kw).transpose(0, 2, 1)
    prod = b.node("MatMul", [cols, b.const(weight_t, "weight_t")], "matmul")  # [N, G, P, Cout/G]
    prod = b.node("Transpose", [prod], "matmul_t", perm=[0, 1, 3, 2])
    prod = reshape(b, prod, (c_out, oh, ow), "products")
    acc = b.node("Add", [prod, b.const(op.bias.reshape(-1, 1, 1), "bias")], "acc")
    rq = op.requant
    return requantize(b, acc, rq.multiplier.reshape(-1, 1, 1), rq.shift.reshape(-1, 1, 1),
                      rq.zero_point, rq.qmin, rq.qmax)


@lowers(ir.Gemm)
def gemm(op: ir.Gemm, b: Builder, x: str) -> str:
    """acc[..., c] = x @ w[c] + bias[c] on the last axis, then per-channel requant."""
    prod = b.node("MatMul", [x, b.const(np.ascontiguousarray(op.weight.T), "weight_t")], "matmul")
    acc = b.node("Add", [prod, b.const(op.bias, "bias")], "acc")
    rq = op.requant
    return requantize(b, acc, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
