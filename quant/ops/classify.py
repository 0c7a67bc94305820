"""Classifier heads: integer Softmax, ArgMax, and Gather (index -> constant)."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.ops.checks import INT64_BITS, ContractError, WidthError, table_lookup
from quant.ops.registry import reference


@reference(ir.Softmax)
def softmax(op: ir.Softmax, x: np.ndarray) -> np.ndarray:
    """d = x - max(x) <= 0; e = exp_table[d + len-1]; y = min((e*R + sum(e)//2) // sum(e), qmax).

    The division rounds half up (e*R/sum(e) + 1/2, floored); sum(e) >= exp_table[-1] > 0
    because the maximum itself reads exp(0).
    """
    where = f"Softmax '{op.name}'"
    table = op.exp_table
    if int(table[-1]) <= 0:
        raise ContractError(f"{where}: exp_table[-1] (exp(0)) must be positive, not {int(table[-1])}")
    top = int(table.max())
    length = x.shape[op.axis]
    if top * op.out_range + (top * length) // 2 >= 1 << (INT64_BITS - 1):
        raise WidthError(f"{where}: exp_table up to {top} times out_range {op.out_range} over "
                         f"{length} classes does not fit int64")
    d = np.subtract(x, x.max(axis=op.axis, keepdims=True), dtype=np.int64)
    e = table_lookup(table, d + (len(table) - 1), where)
    total = e.sum(axis=op.axis, keepdims=True)
    return np.minimum((e * op.out_range + total // 2) // total, op.qmax)


@reference(ir.ArgMax)
def argmax(op: ir.ArgMax, x: np.ndarray) -> np.ndarray:
    """Index of the first maximum along `axis` (numpy's argmax picks the first)."""
    return np.argmax(x, axis=op.axis, keepdims=op.keepdims).astype(np.int64)


@reference(ir.Gather)
def gather(op: ir.Gather, x: np.ndarray) -> np.ndarray:
    """y = table[x] (shape x.shape + table.shape[1:])."""
    return table_lookup(op.table, x, f"Gather '{op.name}'")
