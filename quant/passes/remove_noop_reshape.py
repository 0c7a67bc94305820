"""A Reshape whose output has its input's shape is removed.

Exact: same elements, same order, same shape. Shapes are compared per sample (the batch
dimension is None on both sides, and equal because the element counts are).
"""
from __future__ import annotations

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "Reshape" or node.activation is not None:
        return False
    before, after = view.shape(node.inputs[0]), view.shape(node.outputs[0])
    return (before is not None and before == after and None not in before[1:]
            and view.can_bypass(node))


def transform(view: View, node: Node) -> None:
    view.bypass(node)
