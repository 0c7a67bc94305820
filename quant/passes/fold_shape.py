"""Shape of a tensor whose shape does not depend on the batch becomes a constant.

Exact: the probed shape is the shape at every batch size. (A Shape that reads the batch
dimension cannot be folded; `canonical_reshape` removes the need for it instead.)
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "Shape" or view.is_output(node.outputs[0]):
        return False
    shape = view.shape(node.inputs[0])
    return shape is not None and None not in _sliced(shape, node)


def transform(view: View, node: Node) -> None:
    shape = view.shape(node.inputs[0])
    assert shape is not None
    view.remove(node)
    view.graph.constants[node.outputs[0]] = np.array(_sliced(shape, node), np.int64)


def _sliced(shape: tuple[int | None, ...], node: Node) -> tuple[int | None, ...]:
    """The part of `shape` the node returns (opset 15 `start`/`end` attributes)."""
    return shape[node.attrs.get("start", 0):node.attrs.get("end", len(shape))]
