"""MatMul of a 2-D activation by a constant matrix W[in, out] becomes Gemm(x, W.T, 0).

Exact up to float rounding (the same dot products). A following Add of a constant vector is
then folded into the Gemm bias by `fold_bias_add`, so MatMul+Add becomes a single Gemm.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes import linear
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "MatMul" or view.const(node.inputs[0]) is not None:
        return False
    w = view.const(node.inputs[1])
    shape = view.shape(node.inputs[0])
    return (w is not None and w.ndim == 2 and np.issubdtype(w.dtype, np.floating)
            and shape is not None and len(shape) == 2)


def transform(view: View, node: Node) -> None:
    w = linear.weight(view, node)
    node.op, node.attrs = "Gemm", {"transB": 1}
    linear.set_weight_bias(view, node, w.T, np.zeros(w.shape[1]))
