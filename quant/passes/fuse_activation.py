"""A Relu or constant Clip right after Conv, Gemm, Add, AveragePool, GlobalAveragePool or Mul
becomes that node's fused `activation`.

Exact: the node then computes clamp(op(x), low, high), which is what the pair computed (two
clamps in a row merge into one when their intervals overlap). The producer's output must
feed only the clamp and not be a graph output, since the unclamped value disappears.
"""
from __future__ import annotations

from quant.graph import Node
from quant.passes import clamp
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    found = clamp.bounds(view, node)
    producer = clamp.absorber(view, node.inputs[0]) if found else None
    return found is not None and producer is not None and clamp.merged(producer, *found) is not None


def transform(view: View, node: Node) -> None:
    found = clamp.bounds(view, node)
    producer = clamp.absorber(view, node.inputs[0])
    assert found is not None and producer is not None
    producer.activation = clamp.merged(producer, *found)
    view.absorb(producer, node)
