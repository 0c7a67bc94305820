"""A Reshape of a Reshape reads the inner Reshape's input directly.

Exact: a reshape only reinterprets the same elements in the same order, so the outer target
alone decides the result (targets are canonical by now: no 0 entry copying an input dim).
The inner Reshape disappears when nothing else reads it.
"""
from __future__ import annotations

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "Reshape":
        return False
    inner = view.producer(node.inputs[0])
    target = view.const(node.inputs[1])
    return (inner is not None and inner.op == "Reshape" and inner.activation is None
            and target is not None and (0 not in target or node.attrs.get("allowzero", 0) == 1))


def transform(view: View, node: Node) -> None:
    inner = view.producer(node.inputs[0])
    assert inner is not None
    node.inputs = [inner.inputs[0], *node.inputs[1:]]
