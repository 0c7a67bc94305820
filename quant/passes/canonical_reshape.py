"""Flatten, Squeeze, Unsqueeze and Reshape become `Reshape(x, [-1, d1, ..., dk])`.

The target is the output's per-sample shape with -1 for the batch. Exact whenever d1..dk do
not depend on the batch: -1 is then total/(d1*...*dk), which is the output's first dimension
at every batch size. This also resolves targets computed at run time from `Shape` (torch's
dynamic-batch flatten `Shape -> Gather -> Unsqueeze -> Concat -> Reshape`), leaving that
shape arithmetic dead.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View

SHAPE_ONLY = frozenset({"Flatten", "Squeeze", "Unsqueeze", "Reshape"})


def target(view: View, name: str) -> np.ndarray | None:
    """[-1, per-sample shape] of tensor `name`, or None if its per-sample shape is not static."""
    shape = view.shape(name)
    if not shape or any(d is None or d <= 0 for d in shape[1:]):
        return None
    return np.array([-1, *shape[1:]], np.int64)


def match(view: View, node: Node) -> bool:
    if node.op not in SHAPE_ONLY or node.activation is not None:
        return False
    wanted = target(view, node.outputs[0])
    if wanted is None:
        return False
    if node.op != "Reshape":
        return True
    current = view.const(node.inputs[1])
    return current is None or not np.array_equal(current, wanted) or bool(node.attrs)


def transform(view: View, node: Node) -> None:
    wanted = target(view, node.outputs[0])
    assert wanted is not None
    node.op, node.attrs = "Reshape", {}
    node.inputs = [node.inputs[0], view.add_constant(f"{node.name}_shape", wanted)]
