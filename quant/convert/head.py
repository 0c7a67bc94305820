"""Classifier heads: integer softmax, argmax, and mapping class indices to labels."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.convert.context import Context
from quant.errors import ModelError
from quant.graph import Node

EXP_FRACTION_BITS = 15  # exp_table holds round(exp(d * s) * 2^15)


def convert_softmax(ctx: Context, node: Node) -> None:
    """d = x - max(x) takes every value in [-(qmax - qmin), 0]; tabulate exp(s_x d)."""
    x, y = ctx.qp(node.inputs[0]), ctx.qp(node.outputs[0])
    levels = x.itype.qmax - x.itype.qmin + 1
    d = np.arange(-(levels - 1), 1, dtype=np.float64)
    table = np.floor(np.exp(d * x.scale) * (1 << EXP_FRACTION_BITS) + 0.5).astype(np.int64)
    axis = int(node.attrs.get("axis", -1 if ctx.graph.opset >= 13 else 1))
    rank = len(ctx.shapes[node.outputs[0]]) + 1
    if axis % rank == 0:
        raise ModelError(f"{node}: Softmax over the batch axis is not supported (it would mix "
                         "samples)")
    if ctx.graph.opset < 13 and axis % rank != rank - 1:
        raise ModelError(f"{node}: Softmax before opset 13 must act on the last axis")
    ctx.emit(ir.Softmax(**ctx.io(node), axis=axis % rank, exp_table=table,
                        out_range=int(round(1.0 / y.scale)), qmax=y.itype.qmax))


def convert_argmax(ctx: Context, node: Node) -> None:
    """ArgMax; when its input is a Softmax, look through it (softmax is monotone, so the
    argmax of its input is the same, and integer ties in the probabilities are avoided)."""
    if node.attrs.get("select_last_index", 0):
        raise ModelError(f"{node}: select_last_index=1 is not supported")
    source = node.inputs[0]
    producer = ctx.graph.producers().get(source)
    if producer is not None and producer.op == "Softmax":
        source = producer.inputs[0]
    rank = len(ctx.shapes[source]) + 1
    axis = int(node.attrs.get("axis", 0)) % rank
    if axis == 0:
        raise ModelError(f"{node}: ArgMax over the batch axis is not supported")
    ctx.emit(ir.ArgMax(name=node.name, inputs=[ctx.tensor(source)], outputs=[node.outputs[0]],
                       axis=axis, keepdims=bool(node.attrs.get("keepdims", 1))))


def convert_gather(ctx: Context, node: Node) -> None:
    """Gather / ArrayFeatureExtractor of a constant 1-D table by integer indices (labels)."""
    table_index = 0 if node.op == "ArrayFeatureExtractor" or ctx.graph.is_constant(node.inputs[0]) else None
    if table_index is None:
        raise ModelError(f"{node}: only lookups in a constant table are supported")
    table = ctx.graph.constants[node.inputs[0]]
    if not np.issubdtype(table.dtype, np.integer):
        raise ModelError(f"{node}: table '{node.inputs[0]}' must hold integers, not {table.dtype}")
    if node.op == "Gather" and int(node.attrs.get("axis", 0)) != 0:
        raise ModelError(f"{node}: only Gather on axis 0 is supported")
    ctx.emit(ir.Gather(name=node.name, inputs=[ctx.tensor(node.inputs[1])], outputs=[node.outputs[0]],
                       table=table.reshape(-1).astype(np.int64)))
