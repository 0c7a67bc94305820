"""Elementwise operators: residual Add/Sub, Add/Mul by constants, gating Mul, clamps, and
lookup tables for nonlinear functions."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from quant import ir
from quant.convert.context import Context, check_product_width, magnitude
from quant.errors import ModelError
from quant.graph import Node
from quant.qtypes import signed_bits_for


def _per_sample(ctx: Context, node: Node, const: np.ndarray) -> np.ndarray:
    """A constant operand broadcast against one sample: drop a leading batch axis of size 1."""
    rank = len(ctx.shapes[node.outputs[0]]) + 1
    if const.ndim == rank:
        if const.shape[0] != 1:
            raise ModelError(f"{node}: constant of shape {const.shape} varies along the batch axis")
        const = const[0]
    return const.astype(np.float64)


def convert_add(ctx: Context, node: Node) -> None:
    """Add and Sub of two tensors (SPEC residual Add; Sub negates the second multiplier), or of a
    tensor and a constant (an Affine whose offset carries the constant)."""
    sign = -1 if node.op == "Sub" else 1
    a_name, b_name = node.inputs[:2]
    if ctx.graph.is_constant(a_name) and ctx.graph.is_constant(b_name):
        raise ModelError(f"{node}: both operands are constants (prepare should have folded them)")
    if ctx.graph.is_constant(a_name) or ctx.graph.is_constant(b_name):
        tensor_first = not ctx.graph.is_constant(a_name)
        x_name = a_name if tensor_first else b_name
        const = _per_sample(ctx, node, ctx.graph.constants[b_name if tensor_first else a_name])
        x_sign, c_sign = (1, sign) if tensor_first else (sign, 1)
        _affine(ctx, node, x_name, x_sign * np.ones(1), c_sign * const)
        return
    a, b, y = ctx.qp(a_name), ctx.qp(b_name), ctx.qp(node.outputs[0])
    ratios = (a.scale / y.scale, b.scale / y.scale)
    shift = ctx.common_shift(max(ratios), str(node))
    mult_a, mult_b = (int(math.floor(r * 2.0 ** shift + 0.5)) for r in ratios)
    mult_b *= sign
    acc_bits = signed_bits_for(magnitude(a) * abs(mult_a) + magnitude(b) * abs(mult_b))
    check_product_width(acc_bits, 1, str(node))
    low, high = ctx.output_bounds(node)
    ctx.emit(ir.Add(**ctx.io(node), zero_a=a.zero_point, zero_b=b.zero_point, mult_a=mult_a,
                    mult_b=mult_b, shift=shift, zero_point=y.zero_point, qmin=low, qmax=high,
                    acc_bits=acc_bits))


def convert_mul(ctx: Context, node: Node) -> None:
    """Mul by a constant (an Affine) or of two tensors (gating: one multiplier, one shift)."""
    a_name, b_name = node.inputs[:2]
    if ctx.graph.is_constant(a_name) or ctx.graph.is_constant(b_name):
        x_name, c_name = (b_name, a_name) if ctx.graph.is_constant(a_name) else (a_name, b_name)
        _affine(ctx, node, x_name, _per_sample(ctx, node, ctx.graph.constants[c_name]), np.zeros(1))
        return
    a, b, y = ctx.qp(a_name), ctx.qp(b_name), ctx.qp(node.outputs[0])
    mult, shift = ctx.multiplier(a.scale * b.scale / y.scale, str(node))
    acc_bits = signed_bits_for(magnitude(a) * magnitude(b))
    check_product_width(acc_bits, mult, str(node))
    low, high = ctx.output_bounds(node)
    ctx.emit(ir.Mul(**ctx.io(node), zero_a=a.zero_point, zero_b=b.zero_point, multiplier=mult,
                    shift=shift, zero_point=y.zero_point, qmin=low, qmax=high, acc_bits=acc_bits))


def _affine(ctx: Context, node: Node, x_name: str, gain: np.ndarray, offset: np.ndarray) -> None:
    """y = gain * x + offset in reals, as y_q = ((x_q - z_x) A + B + 2^(n-1)) >> n + z_y with
    A = round(gain s_x / s_y 2^n), B = round(offset / s_y 2^n)."""
    x, y = ctx.qp(x_name), ctx.qp(node.outputs[0])
    ratio = gain * (x.scale / y.scale)
    shift = ctx.common_shift(float(np.max(np.abs(ratio))), str(node))
    scale = np.floor(ratio * 2.0 ** shift + 0.5).astype(np.int64)
    offset_q = np.floor(offset / y.scale * 2.0 ** shift + 0.5).astype(np.int64)
    acc_bits = signed_bits_for(magnitude(x) * int(np.max(np.abs(scale))) + int(np.max(np.abs(offset_q))))
    check_product_width(acc_bits, 1, str(node))
    low, high = ctx.output_bounds(node)
    ctx.emit(ir.Affine(name=node.name, inputs=[ctx.tensor(x_name)], outputs=[node.outputs[0]],
                       input_zero_point=x.zero_point, scale=scale, offset=offset_q, shift=shift,
                       zero_point=y.zero_point, qmin=low, qmax=high, acc_bits=acc_bits))


def convert_clamp(ctx: Context, node: Node) -> None:
    """A ReLU or Clip that no producer absorbed: input and output share QParams, so it is a
    clamp of integers at the quantized bounds."""
    qp = ctx.qp(node.outputs[0])
    if node.op == "Relu":
        low, high = 0.0, math.inf
    else:
        lo, hi = ctx.optional_constant(node, 1), ctx.optional_constant(node, 2)
        low = float(lo) if lo is not None else float(node.attrs.get("min", -math.inf))
        high = float(hi) if hi is not None else float(node.attrs.get("max", math.inf))
    q_low = qp.itype.qmin if not math.isfinite(low) else max(qp.itype.qmin, int(qp.quantize(np.array(low))))
    q_high = qp.itype.qmax if not math.isfinite(high) else min(qp.itype.qmax, int(qp.quantize(np.array(high))))
    ctx.emit(ir.Clamp(**ctx.io(node), low=q_low, high=q_high))


def _hard_sigmoid(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
    return lambda v: np.clip(alpha * v + beta, 0.0, 1.0)


def _leaky_relu(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    alpha = node.attrs.get("alpha", 0.01)
    return lambda v: np.where(v >= 0, v, alpha * v)


FUNCTIONS: dict[str, Callable[[Node], Callable[[np.ndarray], np.ndarray]]] = {
    "Sigmoid": lambda node: lambda v: 1.0 / (1.0 + np.exp(-v)),
    "Tanh": lambda node: np.tanh,
    "HardSigmoid": _hard_sigmoid,
    "LeakyRelu": _leaky_relu,
}


def convert_lut(ctx: Context, node: Node) -> None:
    """Tabulate f over every input integer: table[q - qmin] = quantize_y(f(s_x (q - z_x)))."""
    x, y = ctx.qp(node.inputs[0]), ctx.qp(node.outputs[0])
    codes = np.arange(x.itype.qmin, x.itype.qmax + 1, dtype=np.int64)
    values = FUNCTIONS[node.op](node)(x.dequantize(codes))
    table = y.quantize(values)
    low, high = ctx.output_bounds(node)
    ctx.emit(ir.Lut(**ctx.io(node), table=np.clip(table, low, high), input_min=x.itype.qmin))
