"""Constant folding: a node whose inputs are all constants becomes constants.

Exact by definition: the ONNX reference evaluator computes the node once, offline, with the
graph's own opset. This folds weight preprocessing and torch's shape arithmetic (e.g. the
pads of a ZeroPad2d), and the constants that `Constant` nodes would produce.
"""
from __future__ import annotations

import numpy as np
from onnx.reference import ReferenceEvaluator

from quant.errors import ModelError
from quant.graph import Graph, Node
from quant.passes.base import View

RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                    "Multinomial", "Bernoulli"})
"""Operators with no fixed value to fold."""


def match(view: View, node: Node) -> bool:
    return (node.op not in RANDOM and node.activation is None
            and all(view.const(name) is not None for name in node.inputs if name)
            and not any(view.is_output(name) for name in node.outputs))


def transform(view: View, node: Node) -> None:
    g = view.graph
    inputs = {name: g.constants[name] for name in node.inputs if name}
    single = Graph(nodes=[node], constants=inputs, inputs=[], outputs=[], opset=g.opset,
                   extra_opsets=g.extra_opsets)
    outputs = [name for name in node.outputs if name]
    try:
        values = ReferenceEvaluator(single.to_onnx(extra_outputs=outputs)).run(outputs, {})
    except Exception as e:  # the evaluator raises many types; all mean "cannot fold this node"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"{node}: cannot evaluate it on its constant inputs ({reason})") from None
    view.remove(node)
    for name, value in zip(outputs, values):
        g.constants[name] = np.asarray(value)
