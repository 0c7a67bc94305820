"""Add of a constant right after a Conv or Gemm is folded into the layer's bias.

(W*x + b) + c = W*x + (b + c) when c is the same for every sample and every spatial position
(a scalar or one value per output channel): exact up to float rounding of b + c. A clamp
fused into the Add moves to the layer.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes import linear
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    found = _operands(view, node)
    if found is None:
        return False
    layer, c = found
    shape = view.shape(layer.outputs[0])
    if shape is None or c.ndim > len(shape) or not np.issubdtype(c.dtype, np.floating):
        return False
    padded = (1,) * (len(shape) - c.ndim) + c.shape
    channels = linear.weight(view, layer).shape[0]
    return padded[0] == 1 and padded[1] in (1, channels) and all(d == 1 for d in padded[2:])


def transform(view: View, node: Node) -> None:
    found = _operands(view, node)
    assert found is not None
    layer, c = found
    b = linear.bias(view, layer)
    linear.set_weight_bias(view, layer, linear.weight(view, layer),
                           b.astype(np.float64) + np.broadcast_to(c.reshape(-1), b.shape))
    layer.activation = node.activation
    view.absorb(layer, node)


def _operands(view: View, node: Node) -> tuple[Node, np.ndarray] | None:
    """(layer, c) for Add(layer output, constant c) in either operand order."""
    if node.op != "Add" or len(node.inputs) != 2:
        return None
    for data, other in (node.inputs, node.inputs[::-1]):
        c, layer = view.const(other), view.producer(data)
        if (c is not None and layer is not None and linear.is_foldable(view, layer)
                and view.sole_consumer(layer.outputs[0]) is node):
            return layer, c
    return None
