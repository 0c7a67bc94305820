"""Elementwise integer operators: Add, Mul, Affine (one rounding shift each), Clamp, Lut.

The accumulators are built in int64 scratch memory and requantized in place
(`requant.requantize_scratch`); only the narrow output is fresh memory.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.ops.checks import check_product, check_width, table_lookup
from quant.ops.dtypes import holding, narrowest
from quant.ops.registry import reference
from quant.ops.requant import requantize_scratch
from quant.ops.scratch import scratch


def _centred(slot: str, x: np.ndarray, zero: int, shape: tuple[int, ...]) -> np.ndarray:
    """x - zero broadcast to `shape`, in int64 scratch `slot`."""
    out = scratch(slot, shape, np.int64)
    np.copyto(out, x)
    out -= zero
    return out


def _shape(*arrays: np.ndarray) -> tuple[int, ...]:
    shapes = {np.shape(a) for a in arrays}
    return shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)


def _shift_out(acc: np.ndarray, op: ir.Add | ir.Affine, where: str) -> np.ndarray:
    """y = clamp(((acc + 2^(n-1)) >> n) + z, qmin, qmax) after checking acc's proven width."""
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, 1, where)
    return requantize_scratch(acc, 1, op.shift, op.zero_point, op.qmin, op.qmax)


@reference(ir.Add)
def add(op: ir.Add, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """acc = (a - za)*Ma + (b - zb)*Mb (numpy broadcasting), then one rounding shift."""
    acc = _centred("add.a", a, op.zero_a, _shape(a, b))
    acc *= op.mult_a
    other = _centred("add.b", b, op.zero_b, b.shape)
    other *= op.mult_b
    acc += other
    return _shift_out(acc, op, f"Add '{op.name}'")


@reference(ir.Mul)
def mul(op: ir.Mul, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """acc = (a - za)*(b - zb), then y = clamp(((acc*M + 2^(n-1)) >> n) + z)."""
    where = f"Mul '{op.name}'"
    acc = _centred("mul.a", a, op.zero_a, _shape(a, b))
    acc *= _centred("mul.b", b, op.zero_b, b.shape)
    check_width(acc, op.acc_bits, where)
    check_product(op.acc_bits, op.multiplier, where)
    return requantize_scratch(acc, op.multiplier, op.shift, op.zero_point, op.qmin, op.qmax)


@reference(ir.Affine)
def affine(op: ir.Affine, x: np.ndarray) -> np.ndarray:
    """acc = (x - zx)*A + B with A, B broadcast against one sample, then one rounding shift."""
    acc = _centred("affine", x, op.input_zero_point, _shape(x, op.scale, op.offset))
    acc *= op.scale
    acc += op.offset
    return _shift_out(acc, op, f"Affine '{op.name}'")


@reference(ir.Clamp)
def clamp(op: ir.Clamp, x: np.ndarray) -> np.ndarray:
    """y = clamp(x, low, high)."""
    return np.clip(holding(x, op.low, op.high), op.low, op.high)


@reference(ir.Lut)
def lut(op: ir.Lut, x: np.ndarray) -> np.ndarray:
    """y = table[x - input_min] (read from the table in its narrowest dtype)."""
    table = op.table.astype(narrowest(int(op.table.min()), int(op.table.max())), copy=False)
    return table_lookup(table, x, f"Lut '{op.name}'", offset=op.input_min)
