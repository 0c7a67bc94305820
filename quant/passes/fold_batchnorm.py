"""BatchNormalization right after a Conv or Gemm is folded into its weights and bias.

Inference-mode BN is a per-channel affine map y = s*x + t with s = gamma/sqrt(var + eps) and
t = beta - mean*s, so BN(W*x + b) = (s*W)*x + (s*(b - mean) + beta): exact up to float
rounding (computed in float64, rounded once to the weight's dtype). Only when the layer's
output feeds nothing but the BN; otherwise `batchnorm_to_affine` applies.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes import linear
from quant.passes.base import View


def bn_affine(view: View, node: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (s, t) in float64 of an inference-mode BatchNormalization, else None."""
    if node.op != "BatchNormalization" or node.attrs.get("training_mode", 0) != 0:
        return None
    if any(view.is_used(out) for out in node.outputs[1:]):
        return None
    params = [view.const(name) for name in node.inputs[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)
    s = gamma / np.sqrt(var + node.attrs.get("epsilon", 1e-5))
    return s, beta - mean * s


def match(view: View, node: Node) -> bool:
    if node.activation is not None or bn_affine(view, node) is None:
        return False
    layer = view.producer(node.inputs[0])
    return (layer is not None and linear.is_foldable(view, layer)
            and view.sole_consumer(layer.outputs[0]) is node)


def transform(view: View, node: Node) -> None:
    affine = bn_affine(view, node)
    layer = view.producer(node.inputs[0])
    assert affine is not None and layer is not None
    s, t = affine
    w = linear.weight(view, layer).astype(np.float64)
    b = linear.bias(view, layer).astype(np.float64)
    linear.set_weight_bias(view, layer, w * s.reshape(-1, *[1] * (w.ndim - 1)), s * b + t)
    view.absorb(layer, node)
