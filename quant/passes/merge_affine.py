"""Two consecutive Muls by constants (or Adds of constants) become one.

(x*a)*b = x*(a*b) and (x+a)+b = x+(a+b): exact up to float rounding of a*b or a+b, and the
shapes agree because broadcasting is associative.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View

COMBINE = {"Mul": np.multiply, "Add": np.add}


def match(view: View, node: Node) -> bool:
    return _chain(view, node) is not None


def transform(view: View, node: Node) -> None:
    chain = _chain(view, node)
    assert chain is not None
    x, a, b = chain
    node.inputs = [x, view.add_constant(f"{node.name}_operand", COMBINE[node.op](a, b))]


def _chain(view: View, node: Node) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(x, a, b) for node = op(op(x, a), b) with constants a, b, in any operand order."""
    outer = _split(view, node)
    if outer is None:
        return None
    inner_out, b = outer
    inner = view.producer(inner_out)
    if inner is None or inner.op != node.op or inner.activation is not None:
        return None
    split = _split(view, inner)
    if split is None or view.sole_consumer(inner_out) is not node:
        return None
    return split[0], split[1], b


def _split(view: View, node: Node) -> tuple[str, np.ndarray] | None:
    """(data operand, float constant operand) of a binary Mul/Add, or None."""
    if node.op not in COMBINE or len(node.inputs) != 2:
        return None
    for data, other in (node.inputs, node.inputs[::-1]):
        c = view.const(other)
        if c is not None and view.const(data) is None and np.issubdtype(c.dtype, np.floating):
            return data, c
    return None
