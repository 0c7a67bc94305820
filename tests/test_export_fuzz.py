"""Property: for random small integer graphs, onnxruntime on the export equals the golden model.

Graphs are built directly in the integer IR: chains of Conv, MaxPool, AvgPool,
GlobalAvgPool, Add and Concat with random shapes, strides, pads, dilations and groups,
activation and weight types of 2..8 bits, dyadic (16-bit M) or power-of-two (M = 1)
requantizers whose shifts put outputs in range, and an optional Reshape + Gemm head.
Every tensor is compared, not only the outputs.
"""
from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st

from quant import ir
from quant.evaluate import run
from quant.export import export_onnx, float_values, run_onnx
from quant.qtypes import IntType, QParams, signed_bits_for

MULT_BITS = 16
LAYERS = ("conv", "maxpool", "avgpool", "gap", "add", "concat")


def max_abs(itype: IntType, zero: int) -> int:
    """max |q - z| over the type's range."""
    return max(abs(itype.qmin - zero), abs(itype.qmax - zero))


class Chain:
    """A growing random IntGraph: structure and parameters drawn by hypothesis, weights from a
    drawn seed; `pow2` picks M = 1 requantizers."""

    def __init__(self, draw: st.DrawFn, pow2: bool) -> None:
        self.draw, self.pow2 = draw, pow2
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # bulk weights and biases
        self.ops: list[ir.Op] = []
        self.tensors: dict[str, ir.TensorSpec] = {}

    def integers(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def new_spec(self, name: str, shape: tuple[int, ...]) -> str:
        """A tensor with a random 2..8-bit type and a zero point in the middle half of its range
        (or 0), so that requantized outputs are not mostly saturated."""
        itype = IntType(self.integers(2, 8), self.draw(st.booleans()))
        quarter = (itype.qmax - itype.qmin) // 4
        zero = self.integers(itype.qmin + quarter, itype.qmax - quarter) if self.draw(st.booleans()) else 0
        self.tensors[name] = ir.TensorSpec(shape, QParams(0.1, zero, itype))
        return name

    def out_name(self) -> str:
        return f"t{len(self.ops) + 1}"

    def multiplier(self) -> int:
        return 1 if self.pow2 else self.integers(1 << (MULT_BITS - 2), (1 << (MULT_BITS - 1)) - 1)

    def shift_for(self, bound: int, multiplier: int, out: str) -> int:
        """n that maps |acc * M| <= bound * M onto about half the output type's range, give or
        take a factor 2 (so some outputs saturate, most do not)."""
        bits = (bound * abs(multiplier)).bit_length() - (self.tensors[out].itype.bits - 1)
        return min(max(bits + self.integers(-1, 2), 1), 62)

    def requant(self, bounds: list[int], out: str) -> ir.Requant:
        spec = self.tensors[out]
        mults = [self.multiplier() for _ in bounds]
        return ir.Requant(multiplier=np.array(mults), shift=np.array([self.shift_for(b, m, out)
                                                                       for b, m in zip(bounds, mults)]),
                          zero_point=spec.qparams.zero_point, qmin=spec.itype.qmin, qmax=spec.itype.qmax)

    def window(self, size: tuple[int, int], dilate: bool) -> tuple[tuple, tuple, tuple, tuple]:
        """kernel, strides, pads (each < kernel, so every window touches real input), dilations."""
        kernel = tuple(self.integers(1, min(3, s)) for s in size)
        dilations = tuple(self.integers(1, 2) if dilate and (k - 1) * 2 + 1 <= s else 1
                          for k, s in zip(kernel, size))
        pads = tuple(self.integers(0, k - 1) for k in kernel * 2)
        strides = tuple(self.integers(1, 2) for _ in size)
        return kernel, strides, pads, dilations

    def add_op(self, op: ir.Op) -> str:
        self.ops.append(op)
        return op.outputs[0]


def out_size(size, kernel, strides, pads, dilations) -> tuple[int, int]:
    return tuple((s + pads[i] + pads[i + 2] - (k - 1) * d - 1) // st + 1
                 for i, (s, k, st, d) in enumerate(zip(size, kernel, strides, dilations)))


def window_counts(size, kernel, strides, pads) -> list[int]:
    """Real (unpadded) elements of each pooling window, counted one window at a time."""
    oh, ow = out_size(size, kernel, strides, pads, (1, 1))
    return [sum(0 <= oy * strides[0] - pads[0] + ky < size[0] and 0 <= ox * strides[1] - pads[1] + kx < size[1]
                for ky in range(kernel[0]) for kx in range(kernel[1]))
            for oy in range(oh) for ox in range(ow)]


def conv(c: Chain, x: str) -> str:
    c_in, h, w = c.tensors[x].shape
    group = c.draw(st.sampled_from([g for g in range(1, c_in + 1) if c_in % g == 0]))
    c_out = group * c.integers(1, 3)
    kernel, strides, pads, dilations = c.window((h, w), dilate=True)
    w_max = (1 << (c.integers(2, 8) - 1)) - 1
    weight = c.rng.integers(-w_max, w_max + 1, (c_out, c_in // group, *kernel))
    spec = c.tensors[x]
    x_max = max(-spec.itype.qmin, spec.itype.qmax)
    bias = c.rng.integers(-1, 2, c_out) * (np.abs(weight).reshape(c_out, -1).sum(axis=1) * x_max // 4)
    bounds = [int(np.abs(weight[o]).sum()) * x_max + abs(int(bias[o])) for o in range(c_out)]
    out = c.new_spec(c.out_name(), (c_out, *out_size((h, w), kernel, strides, pads, dilations)))
    return c.add_op(ir.Conv(name=f"conv{len(c.ops)}", inputs=[x], outputs=[out], weight=weight, bias=bias,
                            requant=c.requant(bounds, out), strides=strides, pads=pads, dilations=dilations,
                            group=group, pad_value=spec.qparams.zero_point,
                            acc_bits=np.array([signed_bits_for(b) for b in bounds])))


def max_pool(c: Chain, x: str) -> str:
    spec = c.tensors[x]
    kernel, strides, pads, dilations = c.window(spec.shape[1:], dilate=True)
    out = c.out_name()
    c.tensors[out] = ir.TensorSpec((spec.shape[0], *out_size(spec.shape[1:], kernel, strides, pads, dilations)),
                                   spec.qparams)
    return c.add_op(ir.MaxPool(name=f"maxpool{len(c.ops)}", inputs=[x], outputs=[out], kernel=kernel,
                               strides=strides, pads=pads, dilations=dilations, pad_value=spec.itype.qmin))


def avg_pool(c: Chain, x: str) -> str:
    spec = c.tensors[x]
    kernel, strides, pads, _ = c.window(spec.shape[1:], dilate=False)
    include_pad = c.draw(st.booleans())
    counts = [kernel[0] * kernel[1]] if include_pad else window_counts(spec.shape[1:], kernel, strides, pads)
    divisors = sorted(set(counts))
    out = c.new_spec(c.out_name(), (spec.shape[0], *out_size(spec.shape[1:], kernel, strides, pads, (1, 1))))
    real_max = max_abs(spec.itype, spec.qparams.zero_point)
    bound = kernel[0] * kernel[1] * real_max
    return c.add_op(ir.AvgPool(name=f"avgpool{len(c.ops)}", inputs=[x], outputs=[out], kernel=kernel,
                               strides=strides, pads=pads, count_include_pad=include_pad,
                               input_zero_point=spec.qparams.zero_point, divisors=np.array(divisors),
                               requant=c.requant([d * real_max for d in divisors], out),
                               acc_bits=signed_bits_for(bound)))


def global_avg_pool(c: Chain, x: str) -> str:
    spec = c.tensors[x]
    channels, h, w = spec.shape
    out = c.new_spec(c.out_name(), (channels, 1, 1))
    bound = h * w * max_abs(spec.itype, spec.qparams.zero_point)
    return c.add_op(ir.GlobalAvgPool(name=f"gap{len(c.ops)}", inputs=[x], outputs=[out],
                                     input_zero_point=spec.qparams.zero_point,
                                     requant=c.requant([bound], out), acc_bits=signed_bits_for(bound)))


def add(c: Chain, x: str) -> str:
    """x + an earlier tensor of the same or a broadcastable (C, 1, 1) shape (or x itself)."""
    shape = c.tensors[x].shape
    partners = [t for t, s in c.tensors.items() if s.shape in (shape, (shape[0], 1, 1))]
    y = c.draw(st.sampled_from(partners))
    sa, sb = c.tensors[x], c.tensors[y]
    limit = 1 << (MULT_BITS - 1)
    ma, mb = c.integers(-limit + 1, limit - 1), c.integers(-limit + 1, limit - 1)
    bound = max_abs(sa.itype, sa.qparams.zero_point) * abs(ma) + max_abs(sb.itype, sb.qparams.zero_point) * abs(mb)
    out = c.new_spec(c.out_name(), shape)
    spec = c.tensors[out]
    return c.add_op(ir.Add(name=f"add{len(c.ops)}", inputs=[x, y], outputs=[out], zero_a=sa.qparams.zero_point,
                           zero_b=sb.qparams.zero_point, mult_a=ma, mult_b=mb, shift=c.shift_for(bound, 1, out),
                           zero_point=spec.qparams.zero_point, qmin=spec.itype.qmin, qmax=spec.itype.qmax,
                           acc_bits=signed_bits_for(bound)))


def concat(c: Chain, x: str) -> str:
    """x and an earlier tensor of the same type and spatial size, along channels."""
    spec = c.tensors[x]
    partners = [t for t, s in c.tensors.items() if s.shape[1:] == spec.shape[1:] and s.qparams == spec.qparams]
    y = c.draw(st.sampled_from(partners))
    out = c.out_name()
    c.tensors[out] = ir.TensorSpec((spec.shape[0] + c.tensors[y].shape[0], *spec.shape[1:]), spec.qparams)
    return c.add_op(ir.Concat(name=f"concat{len(c.ops)}", inputs=[x, y], outputs=[out], axis=1))


def gemm_head(c: Chain, x: str) -> str:
    spec = c.tensors[x]
    features = int(np.prod(spec.shape))
    flat = c.out_name()
    c.tensors[flat] = ir.TensorSpec((features,), spec.qparams)
    x = c.add_op(ir.Reshape(name=f"flatten{len(c.ops)}", inputs=[x], outputs=[flat], shape=(-1,)))
    c_out = c.integers(1, 6)
    weight = c.rng.integers(-127, 128, (c_out, features))
    x_max = max(-spec.itype.qmin, spec.itype.qmax)
    bias = c.rng.integers(-1, 2, c_out) * (np.abs(weight).sum(axis=1) * x_max // 4)
    bounds = [int(np.abs(weight[o]).sum()) * x_max + abs(int(bias[o])) for o in range(c_out)]
    out = c.new_spec(c.out_name(), (c_out,))
    return c.add_op(ir.Gemm(name=f"fc{len(c.ops)}", inputs=[x], outputs=[out], weight=weight, bias=bias,
                            requant=c.requant(bounds, out), acc_bits=np.array([signed_bits_for(b) for b in bounds])))


BUILDERS = {"conv": conv, "maxpool": max_pool, "avgpool": avg_pool, "gap": global_avg_pool, "add": add,
            "concat": concat}


@st.composite
def int_graphs(draw: st.DrawFn) -> ir.IntGraph:
    c = Chain(draw, pow2=draw(st.booleans()))
    x = c.new_spec("x", (draw(st.integers(1, 4)), draw(st.integers(3, 8)), draw(st.integers(3, 8))))
    for kind in draw(st.lists(st.sampled_from(LAYERS), min_size=1, max_size=4)):
        x = BUILDERS[kind](c, x)
    outputs = [x]
    if draw(st.booleans()):
        outputs.append(gemm_head(c, x))
    return ir.IntGraph(ops=c.ops, tensors=c.tensors, input="x", outputs=outputs)


@settings(max_examples=100, deadline=None)
@given(graph=int_graphs(), seed=st.integers(0, 2**32 - 1))
def test_random_graphs_run_bit_exact_in_onnxruntime(graph: ir.IntGraph, seed: int) -> None:
    itype = graph.input_spec.itype
    xq = np.random.default_rng(seed).integers(itype.qmin, itype.qmax + 1, (4, *graph.input_spec.shape))
    xq[0], xq[1] = itype.qmin, itype.qmax
    model = export_onnx(graph)
    assert float_values(onnx.shape_inference.infer_shapes(model)) == []
    names = [op.outputs[0] for op in graph.ops]
    golden = run(graph, xq, taps=True)
    ours = run_onnx(model, xq, extra_outputs=names)
    for name in names:
        np.testing.assert_array_equal(ours[name], golden[name], err_msg=f"tensor '{name}'")
