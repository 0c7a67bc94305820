"""Helpers for the linear layers other passes fold into: Conv, and Gemm in canonical form.

Both compute `y[:, c, ...] = sum(W[c] * x) + b[c]` with output channels on axis 1 and the
weight's axis 0, which is what makes per-channel scales and offsets foldable into W and b.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View


def is_canonical_gemm(view: View, node: Node) -> bool:
    """Gemm(x, W[out, in], b[out]) with transA=0, transB=1, alpha=beta=1 and constant W, b."""
    a = node.attrs
    weight = view.const(node.inputs[1]) if len(node.inputs) > 1 else None
    bias = view.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    return (node.op == "Gemm" and a.get("transA", 0) == 0 and a.get("transB", 0) == 1
            and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
            and weight is not None and weight.ndim == 2
            and bias is not None and bias.shape == (weight.shape[0],))


def is_foldable(view: View, node: Node) -> bool:
    """A Conv or canonical Gemm with constant weights and bias (or none), no fused clamp."""
    if node.activation is not None:
        return False
    if node.op == "Gemm":
        return is_canonical_gemm(view, node)
    return (node.op == "Conv" and view.const(node.inputs[1]) is not None
            and (len(node.inputs) < 3 or not node.inputs[2] or view.const(node.inputs[2]) is not None))


def weight(view: View, node: Node) -> np.ndarray:
    value = view.const(node.inputs[1])
    assert value is not None
    return value


def bias(view: View, node: Node) -> np.ndarray:
    """The bias, zeros if the node has none."""
    value = view.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    return value if value is not None else np.zeros(weight(view, node).shape[0], weight(view, node).dtype)


def set_weight_bias(view: View, node: Node, w: np.ndarray, b: np.ndarray) -> None:
    """Give `node` new (freshly named) weight and bias constants, in the weight's dtype."""
    dtype = weight(view, node).dtype
    node.inputs = [node.inputs[0],
                   view.add_constant(f"{node.name}_weight", w.astype(dtype)),
                   view.add_constant(f"{node.name}_bias", b.astype(dtype))]
