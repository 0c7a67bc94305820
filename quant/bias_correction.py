"""Empirical bias correction: make each Conv/Gemm accumulator right on average.

Rounding weights to few bits shifts the mean of a layer's output (Nagel et al. 2019,
"Data-Free Quantization Through Weight Equalization and Bias Correction"). The shift is
measured, not modelled: over the calibration samples, the mean accumulator of the integer
layer (on the integer inputs the golden model really gives it) is compared with the mean
pre-activation output of the float layer, converted to accumulator units
(real = acc * s_y * M / 2^n), and the difference is added to the integer bias. Only the
bias changes, so the integer contract is untouched; the accumulator width is re-proven.
"""
from __future__ import annotations

import copy

import numpy as np

from quant import evaluate, ir
from quant.float_run import FloatSession
from quant.graph import Graph
from quant.ops import kernel_for
from quant.qtypes import signed_bits_for

LINEAR = (ir.Conv, ir.Gemm)
# acc = ((acc * 2 + 1) >> 1) exactly: a requantizer that returns the accumulator itself.
_WIDE = 1 << 62


def correct_biases(graph: ir.IntGraph, float_graph: Graph, x: np.ndarray, batch_size: int = 64) -> None:
    """Adjust the biases of every Conv and Gemm of `graph` in place (see module docstring).

    Layers are corrected one at a time in topological order, each measured on the outputs of
    the already corrected layers before it: correcting all at once from one measurement
    would count an upstream layer's error twice, once where it arises and once downstream.
    """
    layers = [op for op in graph.ops if isinstance(op, LINEAR)]
    if not layers or len(x) == 0:
        return
    nodes = {node.name: node for node in float_graph.nodes}
    preact = {op.name: nodes[op.name].preactivation for op in layers}
    session = FloatSession(float_graph, outputs=sorted(set(preact.values())))
    batches = [x[start:start + batch_size] for start in range(0, len(x), batch_size)]
    float_mean = {op.name: np.zeros(len(op.bias)) for op in layers}
    for batch in batches:
        floats = session(batch)
        for op in layers:
            float_mean[op.name] += _channel_sums(floats[preact[op.name]], _channel_axis(op))
    inputs_q = [evaluate.quantize_input(graph, batch) for batch in batches]
    for op in layers:
        int_mean, count = np.zeros(len(op.bias)), 0
        for xq in inputs_q:
            acc = kernel_for(op)(_accumulator_only(op), evaluate.run(graph, xq, taps=True)[op.inputs[0]])
            int_mean += _channel_sums(acc, _channel_axis(op))
            count += acc.size // len(op.bias)
        out = graph.tensors[op.outputs[0]].qparams
        to_acc = 2.0 ** op.requant.shift / (out.scale * op.requant.multiplier)
        error = float_mean[op.name] / count * to_acc - int_mean / count
        op.bias = op.bias + np.floor(error + 0.5).astype(np.int64)
        _reprove_width(graph, op)


def _channel_axis(op: ir.Conv | ir.Gemm) -> int:
    return 1 if isinstance(op, ir.Conv) else -1


def _accumulator_only(op: ir.Conv | ir.Gemm) -> ir.Conv | ir.Gemm:
    ident = copy.copy(op)
    channels = len(op.bias)
    ident.requant = ir.Requant(multiplier=np.full(channels, 2, np.int64), shift=np.ones(channels, np.int64),
                               zero_point=0, qmin=-_WIDE, qmax=_WIDE)
    return ident


def _channel_sums(values: np.ndarray, axis: int) -> np.ndarray:
    values = np.moveaxis(np.asarray(values, np.float64), axis, -1)
    return values.reshape(-1, values.shape[-1]).sum(axis=0)


def _reprove_width(graph: ir.IntGraph, op: ir.Conv | ir.Gemm) -> None:
    itype = graph.tensors[op.inputs[0]].itype
    peak = max(abs(itype.qmin), abs(itype.qmax))
    bound = np.abs(op.weight).reshape(len(op.bias), -1).sum(axis=1) * peak + np.abs(op.bias)
    op.acc_bits = np.array([signed_bits_for(int(b)) for b in bound], np.int64)
