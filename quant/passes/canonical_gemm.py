"""Gemm in canonical form: Gemm(x, W[out, in], b[out]) with transA=0, transB=1, alpha=beta=1.

alpha*op(B) and beta*C are folded into the constants, a missing C becomes zeros and a C that
broadcasts over the batch becomes a vector: exact up to float rounding of the products.
Gemm with transA=1 (a transposed activation) is left alone.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes import linear
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.op != "Gemm" or node.attrs.get("transA", 0) != 0 or linear.is_canonical_gemm(view, node):
        return False
    b = view.const(node.inputs[1])
    c = _c(view, node)
    return b is not None and b.ndim == 2 and c is not None and _per_sample(c, _out(node, b))


def transform(view: View, node: Node) -> None:
    b, c = view.const(node.inputs[1]), _c(view, node)
    assert b is not None and c is not None
    a = node.attrs
    w = (b if a.get("transB", 0) else b.T).astype(np.float64) * a.get("alpha", 1.0)
    bias = np.broadcast_to(c.reshape(-1).astype(np.float64) * a.get("beta", 1.0), (w.shape[0],))
    node.attrs = {"transB": 1}
    linear.set_weight_bias(view, node, w, bias)


def _out(node: Node, b: np.ndarray) -> int:
    return b.shape[0] if node.attrs.get("transB", 0) else b.shape[1]


def _c(view: View, node: Node) -> np.ndarray | None:
    """C as a constant (zeros when absent), or None when it is computed."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(1, np.float32)
    return view.const(node.inputs[2])


def _per_sample(c: np.ndarray, out: int) -> bool:
    """C is the same for every row: shape (), (k,) or (1, k) with k in {1, out}."""
    return c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1) and (c.ndim == 0 or c.shape[-1] in (1, out))
