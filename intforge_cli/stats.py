"""Per-layer facts of an integer graph, for `inspect` and the demo summary.

MACs count the multiply-accumulates of one sample: a Conv output element costs
C_in/group * kh * kw, a Gemm output element K. Weight bits are the bits the stored weights
need (symmetric, so the largest |w| sets them); parameter bytes count weights packed at
that width and biases as int32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quant import ir
from quant.data import format_shape
from quant.qtypes import signed_bits_for

BIAS_BYTES = 4


@dataclass(frozen=True)
class LayerStats:
    op: str
    name: str
    inputs: str
    output: str
    weight_bits: int | None
    act_type: str
    scale: float
    zero_point: int
    requant: str
    acc_bits: int | None
    macs: int
    params: int
    param_bytes: int


@dataclass(frozen=True)
class Totals:
    ops: int
    macs: int
    params: int
    param_bytes: int
    max_acc_bits: int | None


def layer_stats(graph: ir.IntGraph) -> list[LayerStats]:
    return [_stats(graph, op) for op in graph.ops]


def totals(stats: list[LayerStats]) -> Totals:
    accs = [s.acc_bits for s in stats if s.acc_bits is not None]
    return Totals(ops=len(stats), macs=sum(s.macs for s in stats),
                  params=sum(s.params for s in stats), param_bytes=sum(s.param_bytes for s in stats),
                  max_acc_bits=max(accs, default=None))


def _stats(graph: ir.IntGraph, op: ir.Op) -> LayerStats:
    out = graph.tensors[op.outputs[0]]
    acc = getattr(op, "acc_bits", None)  # every op with an accumulator records its width
    wbits = params = param_bytes = macs = 0
    if isinstance(op, (ir.Conv, ir.Gemm)):
        wbits = signed_bits_for(int(np.max(np.abs(op.weight))))
        params = op.weight.size + op.bias.size
        param_bytes = math.ceil(op.weight.size * wbits / 8) + op.bias.size * BIAS_BYTES
        macs = math.prod(out.shape) * math.prod(op.weight.shape[1:])
    return LayerStats(
        op=type(op).__name__, name=op.name,
        inputs=", ".join(format_shape(graph.tensors[n].shape) for n in op.inputs),
        output=format_shape(out.shape), weight_bits=wbits or None, act_type=str(out.itype),
        scale=out.qparams.scale, zero_point=out.qparams.zero_point, requant=requant_summary(op),
        acc_bits=int(np.max(acc)) if acc is not None else None,
        macs=macs, params=params, param_bytes=param_bytes)


def requant_summary(op: ir.Op) -> str:
    """Multipliers (M) and shifts (n) of an op, as single values or min..max over channels."""
    match op:
        case ir.Conv() | ir.Gemm() | ir.AvgPool() | ir.GlobalAvgPool():
            return f"M {_span(op.requant.multiplier)} n {_span(op.requant.shift)}"
        case ir.Add():
            return f"M {op.mult_a},{op.mult_b} n {op.shift}"
        case ir.Mul():
            return f"M {op.multiplier} n {op.shift}"
        case ir.Affine():
            return f"A {_span(op.scale)} n {op.shift}"
        case ir.Lut():
            return f"table {len(op.table)}"
        case ir.Softmax():
            return f"exp table {len(op.exp_table)}"
    return "-"


def _span(values: np.ndarray) -> str:
    lo, hi = int(np.min(values)), int(np.max(values))
    return str(lo) if lo == hi else f"{lo}..{hi}"
