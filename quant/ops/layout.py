"""Operators that only move integers: Concat, Reshape, Transpose, Pad, Slice (shared QParams).

Axis numbers count the batch axis as 0, as in ONNX; negative axes count from the end.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.ops.checks import ContractError
from quant.ops.dtypes import holding
from quant.ops.registry import reference


@reference(ir.Concat)
def concat(op: ir.Concat, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=op.axis)


@reference(ir.Reshape)
def reshape(op: ir.Reshape, x: np.ndarray) -> np.ndarray:
    """Each sample to `shape` (numpy semantics: one -1 is inferred)."""
    return x.reshape((x.shape[0],) + tuple(op.shape))


@reference(ir.Transpose)
def transpose(op: ir.Transpose, x: np.ndarray) -> np.ndarray:
    if op.perm[0] != 0:
        raise ContractError(f"Transpose '{op.name}': perm {op.perm} must keep the batch axis first")
    return np.transpose(x, op.perm)


@reference(ir.Pad)
def pad(op: ir.Pad, x: np.ndarray) -> np.ndarray:
    """ONNX pads [b_0, ..., b_{r-1}, e_0, ..., e_{r-1}] (begins, then ends), constant `value`."""
    rank = x.ndim
    if len(op.pads) != 2 * rank or op.pads[0] or op.pads[rank]:
        raise ContractError(f"Pad '{op.name}': pads {op.pads} must hold 2*{rank} values, "
                            "none on the batch axis")
    return np.pad(holding(x, op.value), list(zip(op.pads[:rank], op.pads[rank:])), constant_values=op.value)


@reference(ir.Slice)
def slice_(op: ir.Slice, x: np.ndarray) -> np.ndarray:
    """x[..., starts[i]:ends[i], ...] on `axes`, with Python's clamping of starts and ends."""
    index = [slice(None)] * x.ndim
    for start, end, axis in zip(op.starts, op.ends, op.axes, strict=True):
        if axis % x.ndim == 0:
            raise ContractError(f"Slice '{op.name}': axes {op.axes} must not include the batch axis")
        index[axis % x.ndim] = slice(start, end)
    return x[tuple(index)]
