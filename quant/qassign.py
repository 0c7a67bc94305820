"""Choosing every activation tensor's QParams from its calibrated range.

Operators that only move integers (MaxPool, Reshape, Transpose, Pad, Slice, Concat, and a
ReLU that no producer absorbed) need one shared scale and zero point on all their inputs and
outputs (SPEC, "Operators"). Such tensors are joined into groups with a union-find; each
group takes the union of its members' ranges, so every member's values stay representable.
Requantizing operators (Conv, Gemm, Add, Mul, pools, lookup tables) then produce their
outputs directly in the group's QParams, so no extra rescale is ever needed.
"""
from __future__ import annotations

import math

from quant.ranges import Range
from quant.errors import QuantizationError
from quant.graph import Graph
from quant.options import QuantOptions, ScaleMode
from quant.qtypes import IntType, QParams, pow2_scale

# Ops whose inputs (activation inputs only) and outputs must share QParams.
SHARED_SCALE_OPS = {"MaxPool", "Reshape", "Transpose", "Pad", "Slice", "Concat", "Relu", "Clip",
                    "Identity", "Cast"}
# Ops whose output is not a real-valued activation but an index or label.
INDEX_OPS = {"ArgMax", "Gather", "ArrayFeatureExtractor"}
INDEX_QPARAMS = QParams(1.0, 0, IntType(64, True))
# Smallest range width considered, so a constant-zero tensor still gets a usable scale.
MIN_RANGE = 1e-6


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # deterministic representative


def qparams_for_range(rng: Range, bits: int, mode: ScaleMode) -> QParams:
    """Unsigned with z = 0 for a non-negative range (after a ReLU), else signed asymmetric.

    The range is widened to contain 0 so that real zero (padding, ReLU) is exact.
    """
    low, high = min(rng.low, 0.0), max(rng.high, 0.0)
    if high - low < MIN_RANGE:
        high = low + MIN_RANGE
    if low >= 0.0:
        itype = IntType(bits, False)
        scale = high / itype.qmax
        if mode is ScaleMode.POW2:
            scale = pow2_scale(scale)
        return QParams(scale, 0, itype)
    itype = IntType(bits, True)
    scale = (high - low) / (itype.qmax - itype.qmin)
    if mode is ScaleMode.POW2:
        scale = pow2_scale(scale)
    zero = itype.qmin - math.floor(low / scale + 0.5)
    zero = min(max(zero, itype.qmin), itype.qmax)
    return QParams(scale, int(zero), itype)


def softmax_qparams(bits: int) -> QParams:
    """Probabilities in [0, 1) on an unsigned grid of step 1/2^bits (see ir.Softmax)."""
    return QParams(1.0 / (1 << bits), 0, IntType(bits, False))


def assign_qparams(graph: Graph, ranges: dict[str, Range], options: QuantOptions) -> dict[str, QParams]:
    """QParams for the graph input and every float node output of a prepared graph."""
    groups = _UnionFind()
    tensors = [graph.input.name] + [out for node in graph.nodes for out in node.outputs if out]
    for name in tensors:
        groups.find(name)
    for node in graph.nodes:
        if node.op in SHARED_SCALE_OPS:
            for name in [*node.inputs[:1], *(node.inputs[1:] if node.op == "Concat" else []), *node.outputs[:1]]:
                if name and not graph.is_constant(name):
                    groups.union(node.inputs[0], name)

    fixed: dict[str, QParams] = {}
    bits: dict[str, int] = {}
    for node in graph.nodes:
        out = node.outputs[0]
        if node.op in INDEX_OPS:
            fixed[groups.find(out)] = INDEX_QPARAMS
        elif node.op == "Softmax":
            is_output = out in graph.output_names()
            fixed[groups.find(out)] = softmax_qparams(
                options.output_bits if is_output else options.act_bits_for(node.name))
        root = groups.find(out)
        bits[root] = max(bits.get(root, 0), options.act_bits_for(node.name))
    root = groups.find(graph.input.name)
    bits[root] = max(bits.get(root, 0), options.act_bits)
    for name in graph.output_names():
        if groups.find(name) in bits:
            bits[groups.find(name)] = options.output_bits

    union: dict[str, Range] = {}
    for name in tensors:
        root = groups.find(name)
        if root in fixed:
            continue
        if name not in ranges:
            raise QuantizationError(f"tensor '{name}' has no calibrated range")
        rng = ranges[name]
        old = union.get(root)
        union[root] = rng if old is None else Range(min(old.low, rng.low), max(old.high, rng.high))

    result = {}
    for name in tensors:
        root = groups.find(name)
        result[name] = fixed.get(root) or qparams_for_range(union[root], bits[root], options.scale)
    return result
