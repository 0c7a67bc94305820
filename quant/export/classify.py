"""Classifier heads: integer Softmax, ArgMax, and Gather (index -> constant)."""
from __future__ import annotations

from quant import ir
from quant.export.builder import Builder
from quant.export.registry import lowers


@lowers(ir.Softmax)
def softmax(op: ir.Softmax, b: Builder, x: str) -> str:
    """d = x - max(x); e = exp_table[d + len-1]; y = min((e*R + sum(e)//2) // sum(e), qmax).

    Every dividend and divisor is non-negative (e >= 0, sum(e) >= exp(0) > 0), so
    onnxruntime's truncating integer Div is the floor division of the contract.
    """
    axes = b.const([op.axis], "axes")
    top = b.node("ReduceMax", [x, axes], "max", keepdims=1)
    index = b.node("Add", [b.node("Sub", [x, top], "d"), b.const(len(op.exp_table) - 1, "last")], "index")
    e = b.node("Gather", [b.const(op.exp_table, "exp_table"), index], "e", axis=0)
    total = b.node("ReduceSum", [e, axes], "sum", keepdims=1)
    half = b.node("Div", [total, b.const(2, "two")], "half_sum")
    num = b.node("Add", [b.node("Mul", [e, b.const(op.out_range, "out_range")], "scaled"), half], "num")
    quotient = b.node("Div", [num, total], "quotient")
    return b.node("Min", [quotient, b.const(op.qmax, "qmax")], "y")


@lowers(ir.ArgMax)
def argmax(op: ir.ArgMax, b: Builder, x: str) -> str:
    """Index of the first maximum along `axis` (select_last_index=0)."""
    return b.node("ArgMax", [x], "y", axis=op.axis, keepdims=int(op.keepdims), select_last_index=0)


@lowers(ir.Gather)
def gather(op: ir.Gather, b: Builder, x: str) -> str:
    """y = table[x] (shape x.shape + table.shape[1:])."""
    return b.node("Gather", [b.const(op.table, "table"), x], "y", axis=0)
