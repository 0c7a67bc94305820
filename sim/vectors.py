"""Test stimulus: operands with extreme and random values, and random integer layers.

The layers are built the way the quantizer builds them (SPEC): symmetric weights, a folded
bias, requantizers from `quant.qtypes`, and accumulator widths from the bound
|acc[c]| <= sum|w[c]| * max|x| + |b[c]|. Expected outputs never come from here: they come
from the golden kernels (`quant.ops.kernel_for`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from quant import evaluate, ir
from quant.data import load_dataset
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from quant.qtypes import IntType, multiplier_and_shift, pow2_shift, signed_bits_for

MULT_BITS = 16  # SPEC: 16 fits an 18x18 DSP


def operands(itype: IntType, rows: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """[rows, length] values of `itype`: all max, all min, alternating max/min and min/max,
    then uniformly random rows (the first `rows` of that list)."""
    lo, hi = itype.qmin, itype.qmax
    alternating = np.resize([hi, lo], length)
    fixed = np.array([np.full(length, hi), np.full(length, lo), alternating, alternating[::-1]])
    random_rows = rng.integers(lo, hi, size=(max(rows - len(fixed), 0), length), endpoint=True)
    return np.concatenate([fixed, random_rows]).astype(np.int64)[:rows]


def acc_bound(weight: np.ndarray, bias: np.ndarray, in_type: IntType) -> np.ndarray:
    """Per channel, sum|w[c]| * max|x| + |b[c]| (SPEC, "Overflow is impossible")."""
    peak = max(abs(in_type.qmin), abs(in_type.qmax))
    return np.abs(weight).reshape(len(weight), -1).sum(axis=1) * peak + np.abs(bias)


def random_requant(scales: np.ndarray, out_type: IntType, rng: np.random.Generator, *,
                   pow2: bool, relu: bool = False) -> ir.Requant:
    """A requantizer for real scales S[c]: (M, n) per SPEC, or pow2 mode (M a power of two);
    a random output zero point; with `relu`, qmin is the zero point (ReLU folded in)."""
    pairs = [pow2_shift(s, "test") if pow2 else multiplier_and_shift(s, MULT_BITS, "test")
             for s in scales]
    zero = int(rng.integers(out_type.qmin, out_type.qmax, endpoint=True)) if out_type.signed else 0
    return ir.Requant(multiplier=np.array([m for m, _ in pairs], np.int64),
                      shift=np.array([n for _, n in pairs], np.int64), zero_point=zero,
                      qmin=zero if relu else out_type.qmin, qmax=out_type.qmax)


def random_gemm(rng: np.random.Generator, *, outputs: int, inputs: int, in_type: IntType,
                weight_bits: int, out_type: IntType, pow2: bool = False, relu: bool = False,
                per_tensor: bool = False, name: str = "dense") -> ir.Gemm:
    """A random integer Gemm whose outputs spread over the output range and reach its clamps.

    Row 0 of the weights is all +max and row 1 all -max, so extreme inputs reach the proven
    accumulator bound. The scales map a typical random accumulator to about a quarter of the
    output range, times a random factor in [1/4, 4].
    """
    w_max = (1 << (weight_bits - 1)) - 1
    weight = rng.integers(-w_max, w_max, size=(outputs, inputs), endpoint=True)
    weight[0] = w_max
    if outputs > 1:
        weight[1] = -w_max
    x_span = in_type.qmax - in_type.qmin
    bias = rng.integers(-x_span * w_max, x_span * w_max, size=outputs, endpoint=True)
    typical = np.sqrt(inputs) * w_max * x_span / 4 + 1
    spread = 2.0 ** rng.uniform(-2, 2, size=1 if per_tensor else outputs)
    scales = (out_type.qmax - out_type.qmin) / 4 / typical * spread
    acc_bits = np.array([signed_bits_for(int(b)) for b in acc_bound(weight, bias, in_type)])
    return ir.Gemm(name=name, inputs=["x"], outputs=["y"], weight=weight.astype(np.int64),
                   bias=bias.astype(np.int64), acc_bits=acc_bits.astype(np.int64),
                   requant=random_requant(scales, out_type, rng, pow2=pow2, relu=relu))


def quantized_taps(model: Path, calib: Path, options: QuantOptions,
                   samples: int) -> tuple[ir.IntGraph, dict[str, np.ndarray]]:
    """Quantize an ONNX model on a calibration file; return the integer graph and every
    tensor of the golden model run on the file's first `samples` inputs."""
    data = load_dataset(calib)
    graph = quantize_model(model, data, options, progress=False)
    xq = evaluate.quantize_input(graph, data.x[:samples])
    return graph, evaluate.run(graph, xq, taps=True)
