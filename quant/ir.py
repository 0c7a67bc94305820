"""The integer graph: one dataclass per integer operator, plus the tensors' types and scales.

Conventions shared by every operator (and by `hw/`, which lowers these classes):
- tensors are integer numpy arrays in the golden model (computed in int64, stored in the
  narrowest dtype their type allows), NCHW, batch first;
- a tensor's real value is `scale * (q - zero_point)` (see `TensorSpec`); scales are
  metadata, never used at inference;
- `Requant` is SPEC's one multiply, one rounding shift, one clamp:
  `y = clamp(((acc * M + 2^(n-1)) >> n) + z, qmin, qmax)`;
- `acc_bits` records the proven signed width of the value that enters the multiplier
  (`|acc| <= bound` => `signed_bits_for(bound)` bits); the golden model checks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quant.qtypes import IntType, QParams


@dataclass(frozen=True)
class TensorSpec:
    """A tensor of the integer graph: per-sample shape (no batch axis) and its QParams."""

    shape: tuple[int, ...]
    qparams: QParams

    @property
    def itype(self) -> IntType:
        return self.qparams.itype


@dataclass(kw_only=True, eq=False)
class Requant:
    """Per-channel requantizer: y = clamp(((acc * M[c] + 2^(n[c]-1)) >> n[c]) + z, qmin, qmax).

    `multiplier` and `shift` are int64 arrays of one entry per output channel (or one entry
    for a per-tensor requantizer); n >= 1 always.
    """

    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int


@dataclass(kw_only=True, eq=False)
class Op:
    """Base of every integer operator: a name and the names of its input and output tensors."""

    name: str
    inputs: list[str]
    outputs: list[str]


@dataclass(kw_only=True, eq=False)
class Conv(Op):
    """acc[n,c,y,x] = sum(x_q * w_q) + bias[c] over the (padded, dilated, grouped) window, then
    `requant` per output channel. Padding uses `pad_value` (the input zero point), so
    acc needs no zero-point correction beyond the folded bias: bias = b_q - z_x * sum(w[c]).
    `pads` is ONNX order (top, left, bottom, right)."""

    weight: np.ndarray  # int64 [C_out, C_in / group, kh, kw]
    bias: np.ndarray  # int64 [C_out], input zero point folded in
    requant: Requant
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    group: int
    pad_value: int
    acc_bits: np.ndarray  # int64 [C_out]


@dataclass(kw_only=True, eq=False)
class Gemm(Op):
    """acc[..., c] = sum_k x_q[..., k] * w[c, k] + bias[c], then `requant` per channel c.
    Covers Gemm, and MatMul by a constant, on the last axis."""

    weight: np.ndarray  # int64 [C_out, K]
    bias: np.ndarray  # int64 [C_out], input zero point folded in
    requant: Requant
    acc_bits: np.ndarray  # int64 [C_out]


@dataclass(kw_only=True, eq=False)
class MaxPool(Op):
    """Window maximum; input and output share QParams. Padding uses the type's qmin."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    pad_value: int


@dataclass(kw_only=True, eq=False)
class AvgPool(Op):
    """acc = sum over the window's real (unpadded) elements of (x_q - input_zero_point); then
    y = requant(acc) with the (M, n) of the window's divisor: `divisors[i]` is a distinct
    divisor (window count), `requant.multiplier[i]`, `requant.shift[i]` its requantizer
    (S = s_in / (divisor * s_out)). With count_include_pad the divisor is kh*kw everywhere."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    count_include_pad: bool
    input_zero_point: int
    divisors: np.ndarray  # int64 [D]
    requant: Requant  # one entry per divisor
    acc_bits: int


@dataclass(kw_only=True, eq=False)
class GlobalAvgPool(Op):
    """acc[n,c] = sum_{y,x} (x_q - input_zero_point), y = requant(acc) with
    S = s_in / (H * W * s_out); output shape (N, C, 1, 1)."""

    input_zero_point: int
    requant: Requant  # one entry
    acc_bits: int


@dataclass(kw_only=True, eq=False)
class Add(Op):
    """y = clamp((((a - za) * Ma + (b - zb) * Mb + 2^(n-1)) >> n) + z, qmin, qmax).
    Inputs broadcast as numpy does."""

    zero_a: int
    zero_b: int
    mult_a: int
    mult_b: int
    shift: int
    zero_point: int
    qmin: int
    qmax: int
    acc_bits: int  # bits of (a - za) * Ma + (b - zb) * Mb


@dataclass(kw_only=True, eq=False)
class Mul(Op):
    """Elementwise product of two tensors (gating):
    y = clamp((((a - za) * (b - zb) * M + 2^(n-1)) >> n) + z, qmin, qmax)."""

    zero_a: int
    zero_b: int
    multiplier: int
    shift: int
    zero_point: int
    qmin: int
    qmax: int
    acc_bits: int  # bits of (a - za) * (b - zb)


@dataclass(kw_only=True, eq=False)
class Affine(Op):
    """Multiply/add by constants, and plain rescaling:
    y = clamp((((x - zx) * A + B + 2^(n-1)) >> n) + z, qmin, qmax),
    A and B int64 arrays broadcast against one sample (e.g. shape (C, 1, 1) per channel)."""

    input_zero_point: int
    scale: np.ndarray  # int64 A
    offset: np.ndarray  # int64 B
    shift: int
    zero_point: int
    qmin: int
    qmax: int
    acc_bits: int  # bits of (x - zx) * A + B


@dataclass(kw_only=True, eq=False)
class Clamp(Op):
    """y = clamp(x, low, high): a ReLU or Clip whose producer cannot absorb it; same QParams."""

    low: int
    high: int


@dataclass(kw_only=True, eq=False)
class Lut(Op):
    """y = table[x - input_min]: any elementwise function (sigmoid, tanh, hardsigmoid,
    leaky ReLU), tabulated offline over every input integer."""

    table: np.ndarray  # int64 [2^input_bits]
    input_min: int


@dataclass(kw_only=True, eq=False)
class Softmax(Op):
    """Integer softmax along `axis`: d = x - max(x) (d <= 0), e = exp_table[d + len-1] (an
    unsigned fixed-point exponent), y = min((e * out_range + sum(e) // 2) // sum(e), qmax)."""

    axis: int
    exp_table: np.ndarray  # int64 [2^input_bits], exp_table[-1] is exp(0)
    out_range: int
    qmax: int


@dataclass(kw_only=True, eq=False)
class ArgMax(Op):
    """Index of the first maximum along `axis` (int64 output)."""

    axis: int
    keepdims: bool


@dataclass(kw_only=True, eq=False)
class Gather(Op):
    """y = table[x]: map integer indices (e.g. a class index) to constants (e.g. labels)."""

    table: np.ndarray


@dataclass(kw_only=True, eq=False)
class Concat(Op):
    """Concatenate along `axis` (batch axis is 0); all inputs share the output's QParams."""

    axis: int


@dataclass(kw_only=True, eq=False)
class Reshape(Op):
    """Reshape each sample to `shape` (no batch axis). Flatten, Squeeze and Unsqueeze too."""

    shape: tuple[int, ...]


@dataclass(kw_only=True, eq=False)
class Transpose(Op):
    """Permute axes; `perm` includes the batch axis and keeps it first."""

    perm: tuple[int, ...]


@dataclass(kw_only=True, eq=False)
class Pad(Op):
    """Constant padding with `value` (the zero point); `pads` in ONNX order over all axes
    including batch (whose pads are 0)."""

    pads: tuple[int, ...]
    value: int


@dataclass(kw_only=True, eq=False)
class Slice(Op):
    """x[..., starts[i]:ends[i], ...] on `axes` (batch axis excluded), steps of 1."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    axes: tuple[int, ...]


OP_CLASSES: tuple[type[Op], ...] = (
    Conv, Gemm, MaxPool, AvgPool, GlobalAvgPool, Add, Mul, Affine, Clamp, Lut, Softmax,
    ArgMax, Gather, Concat, Reshape, Transpose, Pad, Slice)


@dataclass(eq=False)
class IntGraph:
    """A fully integer model: ops in topological order, every tensor's spec, one input.

    `input` is quantized from floats with `tensors[input].qparams.quantize`; every other
    value is computed from integers only.
    """

    ops: list[Op]
    tensors: dict[str, TensorSpec]
    input: str
    outputs: list[str]
    name: str = "intforge"
    meta: dict[str, str] = field(default_factory=dict)  # options and provenance, for people

    @property
    def input_spec(self) -> TensorSpec:
        return self.tensors[self.input]
