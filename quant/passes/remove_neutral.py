"""Mul by a constant of ones and Add of a constant of zeros are removed.

Exact (up to the sign of a zero): x*1 = x and x+0 = x, provided broadcasting the constant
does not change x's shape.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View

NEUTRAL = {"Mul": 1.0, "Add": 0.0}


def match(view: View, node: Node) -> bool:
    data = _data(view, node)
    return data is not None and view.can_bypass(node, data)


def transform(view: View, node: Node) -> None:
    view.bypass(node, _data(view, node))


def _data(view: View, node: Node) -> str | None:
    """The non-constant operand of a neutral Mul/Add, or None if the node is not neutral."""
    if node.op not in NEUTRAL or node.activation is not None or len(node.inputs) != 2:
        return None
    for data, other in (node.inputs, node.inputs[::-1]):
        c, shape = view.const(other), view.shape(data)
        if (c is not None and view.const(data) is None and shape is not None and c.ndim <= len(shape)
                and np.all(c == NEUTRAL[node.op])
                and all(k == 1 or k == d for k, d in zip(c.shape[::-1], shape[::-1]))):
            return data
    return None
