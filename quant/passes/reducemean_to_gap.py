"""ReduceMean over all spatial axes of an (N, C, ...) tensor becomes GlobalAveragePool.

Exact: both average each channel over the same elements. keepdims=0 adds a Reshape to
(N, C). Axes come from the attribute (opset < 18) or from a constant input (opset >= 18).
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "ReduceMean" or node.activation is not None:
        return False
    shape = view.shape(node.inputs[0])
    axes = _axes(view, node)
    return (shape is not None and len(shape) >= 3 and axes is not None
            and sorted(a % len(shape) for a in axes) == list(range(2, len(shape)))
            and (node.attrs.get("keepdims", 1) == 1 or shape[1] is not None))


def transform(view: View, node: Node) -> None:
    shape, keepdims = view.shape(node.inputs[0]), node.attrs.get("keepdims", 1)
    assert shape is not None
    node.op, node.inputs, node.attrs = "GlobalAveragePool", node.inputs[:1], {}
    if keepdims == 1:
        return
    pooled, out = view.graph.fresh_name(f"{node.outputs[0]}_pooled"), node.outputs[0]
    node.outputs = [pooled]
    flat = Node("Reshape", view.graph.fresh_name(f"{node.name}_flatten"),
                [pooled, view.add_constant(f"{node.name}_shape", np.array([-1, shape[1]], np.int64))], [out])
    view.graph.nodes.append(flat)


def _axes(view: View, node: Node) -> list[int] | None:
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = view.const(node.inputs[1])
        return None if axes is None else axes.tolist()
    return None
