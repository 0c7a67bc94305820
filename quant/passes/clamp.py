"""Helpers for the clamp-fusing passes: the bounds of a Relu/Clip node and which producers
can absorb a clamp.

A producer absorbs a clamp when its integer form ends in a requantize, whose final
clamp(..., qmin, qmax) then also implements the ReLU/ReLU6/Clip for free (SPEC).
"""
from __future__ import annotations

import math

import numpy as np

from quant.graph import Activation, Node
from quant.passes.base import View

ABSORBERS = frozenset({"Conv", "Gemm", "Add", "AveragePool", "GlobalAveragePool", "Mul"})

FLOAT_MAX = float(np.finfo(np.float32).max)


def bounds(view: View, node: Node) -> tuple[float, float] | None:
    """(low, high) of a Relu or of a Clip with constant bounds, else None."""
    if node.op == "Relu":
        return 0.0, math.inf
    if node.op != "Clip":
        return None
    if view.graph.opset < 11:
        low, high = node.attrs.get("min", -FLOAT_MAX), node.attrs.get("max", FLOAT_MAX)
    else:
        names = (node.inputs[1:] + ["", ""])[:2]
        values = [view.const(name) if name else np.array(default)
                  for name, default in zip(names, (-math.inf, math.inf))]
        if any(v is None or v.size != 1 for v in values):
            return None
        low, high = (float(v.reshape(())) for v in values)
    low, high = _unbounded(low), _unbounded(high)
    return (low, high) if low <= high else None


def _unbounded(value: float) -> float:
    """The float32 extremes (Clip's defaults in old opsets) mean no bound at all."""
    return math.copysign(math.inf, value) if abs(value) >= FLOAT_MAX else float(value)


def merged(producer: Node, low: float, high: float) -> Activation | None:
    """The producer's clamp followed by clamp(low, high), as one clamp; None if that is not
    a single clamp (disjoint intervals give a constant)."""
    if producer.activation is None:
        return Activation(low, high)
    lo, hi = max(producer.activation.low, low), min(producer.activation.high, high)
    return Activation(lo, hi) if lo <= hi else None


def absorber(view: View, name: str) -> Node | None:
    """The node producing `name` if it can take a clamp: an absorbing op whose output is read
    by exactly one node and is not a graph output (the unclamped value must be unused)."""
    node = view.producer(name)
    if node is None or node.op not in ABSORBERS or node.outputs[0] != name:
        return None
    return node if view.sole_consumer(name) is not None else None
