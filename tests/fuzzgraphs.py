"""A hypothesis strategy for random small FLOAT ONNX graphs the whole chain must take: the
quantizer, the golden model, the integer export and the accelerator (`hw.plan` has an engine
for every op drawn here, so no drawn graph is ever refused).

A graph is a chain of blocks on an (N, C, H, W) input, C <= 6 and H, W <= 6: Conv, depthwise
Conv, MaxPool, AveragePool, Relu, Sigmoid or Tanh, a residual block (Conv [+ Relu] added to its
input) and a Concat of the tensor with a Conv branch; then a head: nothing (4-D output),
GlobalAveragePool, or Flatten + Gemm (after an optional GlobalAveragePool). Shapes, strides,
pads, weights and quantization options are all drawn. Weights come from a drawn seed (bulk
numbers are not worth shrinking); structure is drawn directly (so it shrinks).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from quant.options import QuantOptions, ScaleMode

MAX_CHANNELS = 6
MAX_SIZE = 6
BLOCKS = ("conv", "depthwise", "maxpool", "avgpool", "activation", "residual", "concat")
OPSET = 13
OUTPUT_HEADROOM = 8


@dataclass
class FuzzCase:
    """One drawn case: the float model, calibration and test inputs, quantization options and
    the hardware knobs (multiplier budget, input gaps, output stalls, simulator seed)."""

    model: onnx.ModelProto
    calib: np.ndarray
    samples: np.ndarray
    options: QuantOptions
    multipliers: int
    gap: float
    stall: float
    seed: int
    blocks: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        shape = tuple(d.dim_value for d in self.model.graph.input[0].type.tensor_type.shape.dim[1:])
        return (f"FuzzCase(input={shape}, blocks={self.blocks}, weight_bits={self.options.weight_bits}, "
                f"act_bits={self.options.act_bits}, scale={self.options.scale.value}, "
                f"multipliers={self.multipliers}, gap={self.gap}, stall={self.stall}, seed={self.seed})")


class _Builder:
    """A growing ONNX graph: nodes, initializers, the current tensor and its (C, H, W)."""

    def __init__(self, draw: st.DrawFn, shape: tuple[int, int, int]) -> None:
        self.draw = draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.x, self.shape = "x", shape
        self.blocks: list[str] = []

    def name(self, stem: str) -> str:
        return f"{stem}{len(self.nodes)}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem) + f"_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def window(self, size: tuple[int, int], stride: bool = True):
        """kernel (fits the input), strides, pads (each < kernel), and the output size."""
        kernel = [self.draw(st.integers(1, min(3, s))) for s in size]
        pads = [self.draw(st.integers(0, k - 1)) for k in kernel * 2]
        strides = [self.draw(st.integers(1, 2)) if stride else 1 for _ in size]
        out = tuple((s + pads[i] + pads[i + 2] - kernel[i]) // strides[i] + 1 for i, s in enumerate(size))
        return kernel, strides, pads, out

    def conv(self, x: str, shape, c_out: int, group: int = 1, same: bool = False) -> tuple[str, tuple]:
        """A Conv with random weights (He-scaled so activations neither vanish nor explode)."""
        c_in, h, w = shape
        if same:  # residual and concat branches keep H, W: odd kernel, centred pads
            k = self.draw(st.sampled_from([k for k in (1, 3) if k <= min(h, w)]))
            kernel, strides, pads, size = [k, k], [1, 1], [k // 2] * 4, (h, w)
        else:
            kernel, strides, pads, size = self.window((h, w))
        fan_in = c_in // group * kernel[0] * kernel[1]
        weight = self.rng.normal(0, 1.4 / np.sqrt(fan_in), (c_out, c_in // group, *kernel))
        bias = self.rng.normal(0, 0.3, c_out)
        out = self.node("Conv", [x, self.const("w", weight), self.const("b", bias)], kernel_shape=kernel,
                        strides=strides, pads=pads, group=group)
        return out, (c_out, *size)

    def activation(self, x: str) -> str:
        return self.node(self.draw(st.sampled_from(["Relu", "Sigmoid", "Tanh"])), [x])


def _block(b: _Builder, kind: str) -> None:
    c, h, w = b.shape
    if kind == "conv":
        b.x, b.shape = b.conv(b.x, b.shape, b.draw(st.integers(1, MAX_CHANNELS)))
        if b.draw(st.booleans()):
            b.x = b.node("Relu", [b.x])
    elif kind == "depthwise":
        b.x, b.shape = b.conv(b.x, b.shape, c, group=c)
    elif kind in ("maxpool", "avgpool"):
        kernel, strides, pads, size = b.window((h, w))
        attrs = dict(kernel_shape=kernel, strides=strides, pads=pads)
        if kind == "avgpool":
            attrs["count_include_pad"] = int(b.draw(st.booleans()))
        b.x = b.node("MaxPool" if kind == "maxpool" else "AveragePool", [b.x], **attrs)
        b.shape = (c, *size)
    elif kind == "activation":
        b.x = b.activation(b.x)
    elif kind == "residual":
        branch, _ = b.conv(b.x, b.shape, c, same=True)
        if b.draw(st.booleans()):
            branch = b.node("Relu", [branch])
        b.x = b.node("Add", [branch, b.x] if b.draw(st.booleans()) else [b.x, branch])
    elif kind == "concat":
        branch, (c_branch, _, _) = b.conv(b.x, b.shape, b.draw(st.integers(1, MAX_CHANNELS - c)), same=True)
        order = [b.x, branch] if b.draw(st.booleans()) else [branch, b.x]
        b.x = b.node("Concat", order, axis=1)
        b.shape = (c + c_branch, h, w)


def _allowed(b: _Builder) -> list[str]:
    return [k for k in BLOCKS if k != "concat" or b.shape[0] < MAX_CHANNELS]


def _head(b: _Builder) -> str:
    kind = b.draw(st.sampled_from(["none", "gap", "gemm", "gap_gemm"]))
    if kind in ("gap", "gap_gemm"):
        b.x = b.node("GlobalAveragePool", [b.x])
        b.shape = (b.shape[0], 1, 1)
    if kind in ("gemm", "gap_gemm"):
        flat = b.node("Flatten", [b.x], axis=1)
        k = int(np.prod(b.shape))
        n = b.draw(st.integers(1, 8))
        weight = b.rng.normal(0, 1.4 / np.sqrt(k), (n, k))
        b.x = b.node("Gemm", [flat, b.const("w", weight), b.const("b", b.rng.normal(0, 0.3, n))],
                     transB=1)
        b.shape = (n,)
    return kind


@st.composite
def float_graphs(draw: st.DrawFn, max_blocks: int = 4) -> tuple[onnx.ModelProto, list[str]]:
    """A random float model (input 'x' of shape (N, C, H, W)) and the names of its blocks."""
    shape = (draw(st.integers(1, MAX_CHANNELS)), draw(st.integers(1, MAX_SIZE)), draw(st.integers(1, MAX_SIZE)))
    b = _Builder(draw, shape)
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(_allowed(b)))
        _block(b, kind)
        b.blocks.append(kind)
    b.blocks.append(_head(b))
    out_shape = ["N", *b.shape]
    graph = helper.make_graph(
        b.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info(b.x, TensorProto.FLOAT, out_shape)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model, b.blocks


@st.composite
def fuzz_cases(draw: st.DrawFn, samples: int = 3, max_blocks: int = 4) -> FuzzCase:
    """A float model, random calibration data (64 samples, a drawn scale per input), `samples`
    test inputs (partly outside the calibrated range, so clamps are exercised), quantization
    options (weights and activations 2..8 bits, dyadic or pow2, per-channel or not) and
    hardware knobs. The output is at most OUTPUT_HEADROOM bits wider than the activations
    (wider ones need rescale factors above 2**14, which the quantizer refuses; see
    docs/reliability-fuzz.md), and the multiplier budget gives every MAC layer at least one."""
    model, blocks = draw(float_graphs(max_blocks=max_blocks))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([0.5, 1.0, 3.0]))
    calib = (rng.normal(0, scale, (64, *shape)) + draw(st.sampled_from([0.0, 1.0]))).astype(np.float32)
    test = (rng.normal(0, scale * 1.3, (samples, *shape))).astype(np.float32)
    act_bits = draw(st.integers(2, 8))
    options = QuantOptions(weight_bits=draw(st.integers(2, 8)), act_bits=act_bits,
                           output_bits=draw(st.integers(act_bits, min(16, act_bits + OUTPUT_HEADROOM))),
                           scale=draw(st.sampled_from(list(ScaleMode))), per_channel=draw(st.booleans()))
    mac_layers = sum(node.op_type in ("Conv", "Gemm") for node in model.graph.node)
    budget = max(mac_layers, draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64])))
    return FuzzCase(model, calib, test, options, multipliers=budget,
                    gap=draw(st.sampled_from([0.0, 0.2, 0.5])), stall=draw(st.sampled_from([0.0, 0.2, 0.5])),
                    seed=draw(st.integers(0, 2**16)), blocks=blocks)
