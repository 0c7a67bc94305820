"""Overflow is impossible by construction (SPEC): the recorded accumulator widths hold for the
worst inputs the input type allows, channel by channel, in every quantized zoo model."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from quant import evaluate, ir
from quant.ops import kernel_for
from quantized import ALL_MODELS, quantized

WIDE = 1 << 62


def _accumulator(op: ir.Conv | ir.Gemm, x: np.ndarray) -> np.ndarray:
    """The raw accumulator of `op` on `x`: the kernel with an identity requantizer
    ((acc * 2 + 1) >> 1 == acc) and no clamp."""
    raw = copy.copy(op)
    channels = len(op.bias)
    raw.requant = ir.Requant(multiplier=np.full(channels, 2), shift=np.ones(channels, np.int64),
                             zero_point=0, qmin=-WIDE, qmax=WIDE)
    return kernel_for(op)(raw, x)


def _extreme_inputs(op: ir.Conv | ir.Gemm, itype) -> np.ndarray:
    """For each output channel c, two samples: x = qmax where w[c] > 0 and qmin elsewhere
    (largest acc), and the mirror image (smallest acc). Conv samples are one window, unpadded."""
    signs = np.sign(op.weight)
    high = np.where(signs > 0, itype.qmax, itype.qmin)
    low = np.where(signs > 0, itype.qmin, itype.qmax)
    if isinstance(op, ir.Gemm):
        return np.concatenate([high, low]).astype(np.int64)  # [2C, K]
    c_out, c_group, kh, kw = op.weight.shape
    dh, dw = op.dilations
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    samples = []
    for pattern in (high, low):
        for c in range(c_out):
            x = np.full((op.group * c_group, *span), itype.qmin, np.int64)
            g = c // (c_out // op.group)
            x[g * c_group:(g + 1) * c_group, ::dh, ::dw] = pattern[c]
            samples.append(x)
    return np.stack(samples)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_accumulator_widths_hold_for_extreme_inputs(name: str) -> None:
    graph = quantized(name, 4)
    layers = [op for op in graph.ops if isinstance(op, (ir.Conv, ir.Gemm))]
    assert layers
    for op in layers:
        itype = graph.tensors[op.inputs[0]].itype
        probe = copy.copy(op)
        if isinstance(op, ir.Conv):
            probe.pads, probe.strides = (0, 0, 0, 0), (1, 1)
        acc = _accumulator(probe, _extreme_inputs(op, itype))
        channels = len(op.bias)
        per_sample = acc.reshape(2 * channels, channels) if isinstance(op, ir.Gemm) else acc.reshape(2 * channels, channels)
        reached = np.concatenate([np.diag(per_sample[:channels]), np.diag(per_sample[channels:])])
        limit = np.concatenate([op.acc_bits, op.acc_bits])
        assert np.all(np.abs(reached) < 2.0 ** (limit - 1)), f"{name} {op.name}: accumulator exceeds its width"
        # the bound is tight up to the bias: the extreme sum reaches sum|w| * peak - |bias|
        peak = max(abs(itype.qmin), abs(itype.qmax))
        floor = np.abs(op.weight).reshape(channels, -1).sum(axis=1) * min(abs(itype.qmin), abs(itype.qmax)) \
            - np.abs(op.bias)
        assert np.all(np.maximum(np.abs(reached[:channels]), np.abs(reached[channels:])) >= floor), \
            f"{name} {op.name}: the extreme pattern did not reach the bound it should"
        assert peak > 0


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("pattern", ["max", "min", "alternating"])
def test_whole_model_runs_on_extreme_inputs(name: str, pattern: str) -> None:
    """The golden model checks every accumulator and output against its width and raises on
    a violation; all-max, all-min and alternating inputs must pass through cleanly."""
    graph = quantized(name, 8)
    spec = graph.input_spec
    shape = (4, *spec.shape)
    if pattern == "max":
        xq = np.full(shape, spec.itype.qmax, np.int64)
    elif pattern == "min":
        xq = np.full(shape, spec.itype.qmin, np.int64)
    else:
        flat = np.resize([spec.itype.qmin, spec.itype.qmax], int(np.prod(shape)))
        xq = flat.reshape(shape).astype(np.int64)
    outputs = evaluate.run(graph, xq, taps=True)
    assert set(graph.outputs) <= set(outputs)
