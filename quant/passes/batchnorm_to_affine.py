"""A BatchNormalization that cannot be folded into a layer becomes Mul + Add by constants.

y = s*x + t per channel (see `fold_batchnorm`), with s and t shaped (C, 1, ..., 1) so they
broadcast over the channel axis 1 of an (N, C, ...) input: exact up to float rounding.
"""
from __future__ import annotations

from quant.graph import Node
from quant.passes.base import View
from quant.passes.fold_batchnorm import bn_affine


def match(view: View, node: Node) -> bool:
    if node.activation is not None or bn_affine(view, node) is None:
        return False
    shape = view.shape(node.inputs[0])
    return shape is not None and len(shape) >= 2


def transform(view: View, node: Node) -> None:
    affine = bn_affine(view, node)
    shape = view.shape(node.inputs[0])
    dtype = view.dtype(node.inputs[0])
    assert affine is not None and shape is not None
    s, t = (v.reshape(-1, *[1] * (len(shape) - 2)).astype(dtype) for v in affine)
    scaled = view.graph.fresh_name(f"{node.outputs[0]}_scaled")
    mul = Node("Mul", view.graph.fresh_name(f"{node.name}_scale"),
               [node.inputs[0], view.add_constant(f"{node.name}_s", s)], [scaled])
    node.op, node.attrs = "Add", {}
    node.inputs = [scaled, view.add_constant(f"{node.name}_t", t)]
    view.insert_before(node, mul)
