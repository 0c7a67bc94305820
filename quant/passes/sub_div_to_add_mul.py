"""x - c becomes x + (-c), and x / c becomes x * (1/c), for a float constant c.

Negation is exact; the reciprocal is rounded once, so x * (1/c) may differ from x / c in the
last bit. The quantizer then only needs Add and Mul with constants. Integer Div (which
truncates) is left alone.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View

REPLACEMENT = {"Sub": ("Add", np.negative), "Div": ("Mul", np.reciprocal)}


def match(view: View, node: Node) -> bool:
    c = view.const(node.inputs[1]) if node.op in REPLACEMENT else None
    return (c is not None and np.issubdtype(c.dtype, np.floating)
            and view.const(node.inputs[0]) is None)


def transform(view: View, node: Node) -> None:
    op, invert = REPLACEMENT[node.op]
    c = view.const(node.inputs[1])
    node.op = op
    node.inputs = [node.inputs[0], view.add_constant(f"{node.name}_{op.lower()}_operand", invert(c))]
