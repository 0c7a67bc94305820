"""Elementwise integer operators: Add, Mul, Affine (one rounding shift each), Clamp, Lut."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.arith import requantize
from quant.ops.checks import check_product, check_width, table_lookup
from quant.ops.registry import reference


def _shift_out(acc: np.ndarray, op: ir.Add | ir.Affine, where: str) -> np.ndarray:
    """y = clamp(((acc + 2^(n-1)) >> n) + z, qmin, qmax) after checking acc's proven width."""
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, 1, where)
    return requantize(acc, 1, op.shift, op.zero_point, op.qmin, op.qmax)


@reference(ir.Add)
def add(op: ir.Add, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """acc = (a - za)*Ma + (b - zb)*Mb (numpy broadcasting), then one rounding shift."""
    acc = (a - op.zero_a) * op.mult_a + (b - op.zero_b) * op.mult_b
    return _shift_out(acc, op, f"Add '{op.name}'")


@reference(ir.Mul)
def mul(op: ir.Mul, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """acc = (a - za)*(b - zb), then y = clamp(((acc*M + 2^(n-1)) >> n) + z)."""
    where = f"Mul '{op.name}'"
    acc = (a - op.zero_a) * (b - op.zero_b)
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.multiplier, where)
    return requantize(acc, op.multiplier, op.shift, op.zero_point, op.qmin, op.qmax)


@reference(ir.Affine)
def affine(op: ir.Affine, x: np.ndarray) -> np.ndarray:
    """acc = (x - zx)*A + B with A, B broadcast against one sample, then one rounding shift."""
    acc = (x - op.input_zero_point) * op.scale + op.offset
    return _shift_out(acc, op, f"Affine '{op.name}'")


@reference(ir.Clamp)
def clamp(op: ir.Clamp, x: np.ndarray) -> np.ndarray:
    """y = clamp(x, low, high)."""
    return np.clip(x, op.low, op.high)


@reference(ir.Lut)
def lut(op: ir.Lut, x: np.ndarray) -> np.ndarray:
    """y = table[x - input_min]."""
    return table_lookup(op.table, x - op.input_min, f"Lut '{op.name}'")
