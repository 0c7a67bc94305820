"""Elementwise operators: Add, Mul, Affine (one rounding shift each), Clamp, Lut."""
from __future__ import annotations

from quant import ir
from quant.export.arith import centred, requantize
from quant.export.builder import Builder
from quant.export.registry import lowers


def _scaled(b: Builder, x: str, zero_point: int, factor: object, hint: str) -> str:
    """(x - z) * factor."""
    return b.node("Mul", [centred(b, x, zero_point, f"{hint}_centred"), b.const(factor, f"{hint}_M")], hint)


@lowers(ir.Add)
def add(op: ir.Add, b: Builder, x: str, y: str) -> str:
    """acc = (a - za)*Ma + (b - zb)*Mb (numpy broadcasting), then one rounding shift."""
    acc = b.node("Add", [_scaled(b, x, op.zero_a, op.mult_a, "a"), _scaled(b, y, op.zero_b, op.mult_b, "b")],
                 "acc")
    return requantize(b, acc, 1, op.shift, op.zero_point, op.qmin, op.qmax)


@lowers(ir.Mul)
def mul(op: ir.Mul, b: Builder, x: str, y: str) -> str:
    """acc = (a - za)*(b - zb), then y = clamp(((acc*M + 2^(n-1)) >> n) + z)."""
    acc = b.node("Mul", [centred(b, x, op.zero_a, "a_centred"), centred(b, y, op.zero_b, "b_centred")], "acc")
    return requantize(b, acc, op.multiplier, op.shift, op.zero_point, op.qmin, op.qmax)


@lowers(ir.Affine)
def affine(op: ir.Affine, b: Builder, x: str) -> str:
    """acc = (x - zx)*A + B with A, B broadcast against one sample, then one rounding shift."""
    acc = b.node("Add", [_scaled(b, x, op.input_zero_point, op.scale, "scaled"), b.const(op.offset, "B")], "acc")
    return requantize(b, acc, 1, op.shift, op.zero_point, op.qmin, op.qmax)


@lowers(ir.Clamp)
def clamp(op: ir.Clamp, b: Builder, x: str) -> str:
    """y = clamp(x, low, high)."""
    return b.node("Clip", [x, b.const(op.low, "low"), b.const(op.high, "high")], "y")


@lowers(ir.Lut)
def lut(op: ir.Lut, b: Builder, x: str) -> str:
    """y = table[x - input_min]: one Gather on the constant table."""
    index = centred(b, x, op.input_min, "index")
    return b.node("Gather", [b.const(op.table, "table"), index], "y", axis=0)
