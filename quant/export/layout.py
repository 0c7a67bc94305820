"""Operators that only move integers: Concat, Reshape, Transpose, Pad, Slice.

Axis numbers count the batch axis as 0, as in ONNX, so they pass through unchanged.
"""
from __future__ import annotations

from quant import ir
from quant.export.builder import Builder, reshape
from quant.export.registry import lowers


@lowers(ir.Concat)
def concat(op: ir.Concat, b: Builder, *xs: str) -> str:
    return b.node("Concat", list(xs), "y", axis=op.axis)


@lowers(ir.Reshape)
def reshape_(op: ir.Reshape, b: Builder, x: str) -> str:
    """Each sample to the output's per-sample shape (resolved, so no -1 reaches ONNX)."""
    return reshape(b, x, b.shapes[op.outputs[0]], "y")


@lowers(ir.Transpose)
def transpose(op: ir.Transpose, b: Builder, x: str) -> str:
    return b.node("Transpose", [x], "y", perm=list(op.perm))


@lowers(ir.Pad)
def pad(op: ir.Pad, b: Builder, x: str) -> str:
    """Constant padding; ONNX pads order [begins..., ends...] as in the IR."""
    return b.node("Pad", [x, b.const(list(op.pads), "pads"), b.const(op.value, "value")], "y")


@lowers(ir.Slice)
def slice_(op: ir.Slice, b: Builder, x: str) -> str:
    """x[..., starts[i]:ends[i], ...] on `axes`; ONNX clamps starts and ends as Python does."""
    return b.node("Slice", [x, b.const(list(op.starts), "starts"), b.const(list(op.ends), "ends"),
                            b.const(list(op.axes), "axes")], "y")
