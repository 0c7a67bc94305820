"""Operators that move integers without arithmetic; their tensors share QParams (qassign)."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.convert.context import Context
from quant.errors import ModelError
from quant.graph import Node


def _axis(ctx: Context, node: Node, axis: int) -> int:
    """A non-negative axis of the batched tensor; the batch axis itself is refused."""
    rank = len(ctx.shapes[node.outputs[0]]) + 1
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank:
        raise ModelError(f"{node}: axis {axis} must be a non-batch axis of a rank-{rank} tensor")
    return axis


def convert_reshape(ctx: Context, node: Node) -> None:
    """Reshape (and Flatten, Squeeze, Unsqueeze) to the inferred per-sample shape."""
    ctx.emit(ir.Reshape(**ctx.io(node), shape=tuple(ctx.shapes[node.outputs[0]])))


def convert_transpose(ctx: Context, node: Node) -> None:
    perm = tuple(int(p) for p in node.attrs.get("perm", ()))
    if not perm or perm[0] != 0:
        raise ModelError(f"{node}: transposes must keep the batch axis first, not perm {perm}")
    ctx.emit(ir.Transpose(**ctx.io(node), perm=perm))


def convert_pad(ctx: Context, node: Node) -> None:
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        raise ModelError(f"{node}: only constant padding is supported, not mode '{mode}'")
    pads = ctx.optional_constant(node, 1)
    pads = tuple(int(p) for p in (pads if pads is not None else node.attrs.get("pads", ())))
    if len(node.inputs) > 3 and node.inputs[3]:
        raise ModelError(f"{node}: Pad with explicit axes is not supported")
    rank = len(pads) // 2
    if pads[0] or pads[rank] or min(pads) < 0:
        raise ModelError(f"{node}: pads {pads} must be non-negative and leave the batch axis alone")
    value = ctx.optional_constant(node, 2)
    real = float(value) if value is not None and value.size else float(node.attrs.get("value", 0.0))
    ctx.emit(ir.Pad(**ctx.io(node), pads=pads, value=int(ctx.qp(node.outputs[0]).quantize(np.array(real)))))


def convert_slice(ctx: Context, node: Node) -> None:
    starts = ctx.constant(node, 1, "starts")
    ends = ctx.constant(node, 2, "ends")
    axes = ctx.optional_constant(node, 3)
    steps = ctx.optional_constant(node, 4)
    axes = range(len(starts)) if axes is None else axes
    if steps is not None and np.any(steps != 1):
        raise ModelError(f"{node}: only slices with step 1 are supported, not steps {steps.tolist()}")
    in_shape = ctx.shapes[node.inputs[0]]
    axes_out, starts_out, ends_out = [], [], []
    for axis, start, end in zip(axes, starts, ends):
        axis = _axis(ctx, node, int(axis))
        size = in_shape[axis - 1]
        start, end = (int(v) + size if v < 0 else int(v) for v in (start, end))
        axes_out.append(axis)
        starts_out.append(min(max(start, 0), size))
        ends_out.append(min(max(end, 0), size))
    ctx.emit(ir.Slice(**ctx.io(node), starts=tuple(starts_out), ends=tuple(ends_out), axes=tuple(axes_out)))


def convert_concat(ctx: Context, node: Node) -> None:
    ctx.emit(ir.Concat(**ctx.io(node), axis=_axis(ctx, node, int(node.attrs["axis"]))))


def convert_alias(ctx: Context, node: Node) -> None:
    """Identity, and a Cast between integer types or to the same float type: no integer op."""
    ctx.alias[node.outputs[0]] = ctx.tensor(node.inputs[0])
