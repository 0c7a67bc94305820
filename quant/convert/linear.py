"""Conv, Gemm and MatMul by a constant: symmetric per-channel weights, folded bias, requantize.

acc[c] = sum(x_q * w_q[c]) + bias'[c] with bias'[c] = round(b[c] / (s_x s_w[c])) - z_x sum(w_q[c]),
y = requant(acc) with S[c] = s_x s_w[c] / s_y (SPEC, "Conv / Gemm / MatMul").
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.convert.context import Context, check_product_width
from quant.errors import ModelError
from quant.graph import Node
from quant.options import ScaleMode
from quant.qtypes import signed_bits_for

# Fractions of a channel's peak |w| tried as its clipping threshold (1.0 first: no clipping).
CLIP_CANDIDATES = tuple(np.linspace(1.0, 0.5, 21))


def quantize_weights(weight: np.ndarray, bits: int, per_channel: bool,
                     mode: ScaleMode) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric weights on [-(2^(b-1)-1), 2^(b-1)-1]; one scale per output channel (axis 0),
    or one for the whole tensor. Returns (w_q int64, s_w float64 per channel).

    The scale is the one among `CLIP_CANDIDATES` fractions of the peak that minimizes the
    squared rounding-plus-clipping error: at 4 bits, clipping a few outliers of a channel
    buys a finer grid for all the other weights.
    """
    qmax = (1 << (bits - 1)) - 1
    flat = weight.reshape(weight.shape[0], -1).astype(np.float64)
    if not per_channel:
        flat = flat.reshape(1, -1)
    peak = np.abs(flat).max(axis=1)
    best_scale = np.where(peak > 0, peak / qmax, 1.0)
    best_error = np.full(len(peak), np.inf)
    for fraction in CLIP_CANDIDATES:
        scale = np.where(peak > 0, peak * fraction / qmax, 1.0)
        if mode is ScaleMode.POW2:
            scale = 2.0 ** np.ceil(np.log2(scale))
        q = np.clip(np.floor(flat / scale[:, None] + 0.5), -qmax, qmax)
        error = ((q * scale[:, None] - flat) ** 2).sum(axis=1)
        better = error < best_error
        best_scale = np.where(better, scale, best_scale)
        best_error = np.where(better, error, best_error)
    scales = np.broadcast_to(best_scale, (weight.shape[0],)).copy()
    shaped = scales.reshape((-1,) + (1,) * (weight.ndim - 1))
    w_q = np.clip(np.floor(weight / shaped + 0.5), -qmax, qmax).astype(np.int64)
    return w_q, scales


def _integer_layer(ctx: Context, node: Node, weight: np.ndarray, bias: np.ndarray | None):
    """Shared by Conv and Gemm: weights, folded bias, requantizer and accumulator widths."""
    x = ctx.qp(node.inputs[0])
    y = ctx.qp(node.outputs[0])
    w_q, s_w = quantize_weights(weight, ctx.options.weight_bits_for(node.name),
                                ctx.options.per_channel, ctx.options.scale)
    bias = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64).reshape(-1)
    if bias.shape[0] != weight.shape[0]:
        raise ModelError(f"{node}: bias has {bias.shape[0]} entries for {weight.shape[0]} output channels")
    w_sum = w_q.reshape(w_q.shape[0], -1).sum(axis=1)
    b_q = np.floor(bias / (x.scale * s_w) + 0.5).astype(np.int64) - x.zero_point * w_sum
    requant = ctx.requant(node, x.scale * s_w / y.scale)
    x_peak = max(abs(x.itype.qmin), abs(x.itype.qmax))
    bound = np.abs(w_q).reshape(w_q.shape[0], -1).sum(axis=1) * x_peak + np.abs(b_q)
    acc_bits = np.array([signed_bits_for(int(b)) for b in bound], np.int64)
    check_product_width(int(acc_bits.max()), requant.multiplier, str(node))
    return dict(weight=w_q, bias=b_q, requant=requant, acc_bits=acc_bits)


def convert_conv(ctx: Context, node: Node) -> None:
    weight = ctx.constant(node, 1, "weight")
    if weight.ndim != 4:
        raise ModelError(f"{node}: only 2-D convolutions are supported, not {weight.ndim - 2}-D")
    attrs = node.attrs
    ctx.emit(ir.Conv(**ctx.io(node), **_integer_layer(ctx, node, weight, ctx.optional_constant(node, 2)),
                     strides=tuple(attrs.get("strides", (1, 1))),
                     pads=tuple(attrs.get("pads", (0, 0, 0, 0))),
                     dilations=tuple(attrs.get("dilations", (1, 1))),
                     group=int(attrs.get("group", 1)),
                     pad_value=ctx.qp(node.inputs[0]).zero_point))


def convert_gemm(ctx: Context, node: Node) -> None:
    """Gemm in prepare's canonical form (transA=0, alpha=beta=1) and MatMul by a constant."""
    attrs = node.attrs
    if node.op == "Gemm" and (attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                              or attrs.get("beta", 1.0) != 1.0):
        raise ModelError(f"{node}: Gemm must have transA=0, alpha=1, beta=1 after prepare")
    weight = ctx.constant(node, 1, "weight")
    if weight.ndim != 2:
        raise ModelError(f"{node}: weight must be a 2-D matrix, not shape {weight.shape}")
    if node.op == "MatMul" or not attrs.get("transB", 0):
        weight = weight.T
    bias = ctx.optional_constant(node, 2) if node.op == "Gemm" else None
    if bias is not None and bias.size == 1:
        bias = np.broadcast_to(bias.reshape(-1), (weight.shape[0],))
    ctx.emit(ir.Gemm(**ctx.io(node), **_integer_layer(ctx, node, weight, bias)))

