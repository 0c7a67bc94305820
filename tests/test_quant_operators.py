"""Every supported operator through the whole flow (verify, prepare, calibrate, quantize,
golden model), in small hand-built float graphs, against onnxruntime on the same file.

The zoo models cover the common layers; these graphs cover the rest (Transpose, Slice,
two-input models, standalone clamps, Sub of two tensors, an unfoldable BatchNormalization,
Pad before a pool, Squeeze/Unsqueeze, ...). Each output is dequantized and must be close to
the float output: a signal-to-quantization-noise ratio of an 8-bit flow, and a small mean
error relative to the output's span.
"""
from __future__ import annotations

from pathlib import Path

import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant import evaluate
from quant.data import Dataset
from quant.options import QuantOptions, ScaleMode
from quant.pipeline import quantize_model


class _Rng:
    """One generator per test case, seeded by the case's name, so results never depend on
    which tests ran before in the same process (pytest-xdist distributes them freely)."""

    generator = np.random.default_rng(0)

    @classmethod
    def reset(cls, name: str) -> None:
        cls.generator = np.random.default_rng(zlib.crc32(name.encode()))




def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _weights(name: str, *shape: int) -> onnx.TensorProto:
    return _const(name, (_Rng.generator.standard_normal(shape) * 0.3).astype(np.float32))


def _model(nodes, inits, inputs, output_shape, opset=17) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", *s]) for n, s in inputs]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *output_shape])
    graph = helper.make_graph(nodes, "g", ins, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def conv_transpose_gemm():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t", "shape"], ["r"]),
             helper.make_node("Gemm", ["r", "fc", "fb"], ["y"], transB=1)]
    inits = [_weights("w", 4, 2, 3, 3), _weights("b", 4), _const("shape", np.array([-1, 4 * 6 * 6])),
             _weights("fc", 5, 144), _weights("fb", 5)]
    return _model(nodes, inits, [("x", (2, 6, 6))], (5,))


def two_inputs_sub_relu():
    nodes = [helper.make_node("Gemm", ["a", "w1", "b1"], ["ga"], transB=1),
             helper.make_node("Gemm", ["b", "w2", "b2"], ["gb"], transB=1),
             helper.make_node("Sub", ["ga", "gb"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    inits = [_weights("w1", 6, 4), _weights("b1", 6), _weights("w2", 6, 3), _weights("b2", 6)]
    return _model(nodes, inits, [("a", (4,)), ("b", (3,))], (6,))


def maxpool_then_clamps():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("Clip", ["r", "lo", "hi"], ["y"])]
    inits = [_weights("w", 3, 1, 3, 3), _const("lo", np.float32(0.0)), _const("hi", np.float32(0.5))]
    return _model(nodes, inits, [("x", (1, 8, 8))], (3, 3, 3))


def unfoldable_batchnorm():
    c = 3
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x3"], ["s"]),
             helper.make_node("BatchNormalization", ["s", "g", "be", "mu", "var"], ["y"])]
    inits = [_weights("w", c, c, 3, 3), _const("g", np.array([1.5, -0.5, 2.0], np.float32)),
             _const("be", np.array([0.1, 0.2, -0.3], np.float32)),
             _const("mu", np.array([0.0, 0.5, -0.2], np.float32)),
             _const("var", np.array([1.0, 0.5, 2.0], np.float32))]
    nodes.insert(0, helper.make_node("Identity", ["x"], ["x3"]))
    return _model(nodes, inits, [("x", (c, 5, 5))], (c, 5, 5))


def pad_avgpool_divisors():
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[2, 2]),
             helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              count_include_pad=0)]
    inits = [_const("pads", np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64))]
    return _model(nodes, inits, [("x", (2, 6, 6))], (2, 6, 6))


def concat_gate_softmax():
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["c1", "x"], ["cat"], axis=1),
             helper.make_node("HardSigmoid", ["cat"], ["hs"]),
             helper.make_node("LeakyRelu", ["cat"], ["lr"], alpha=0.2),
             helper.make_node("Mul", ["hs", "lr"], ["g"]),
             helper.make_node("ReduceMean", ["g", "axes"], ["gap"], keepdims=0),
             helper.make_node("Unsqueeze", ["gap", "ax2"], ["u"]),
             helper.make_node("Squeeze", ["u", "ax2"], ["sq"]),
             helper.make_node("Mul", ["sq", "k"], ["scaled"]),
             helper.make_node("Softmax", ["scaled"], ["y"], axis=1)]
    inits = [_weights("w1", 3, 2, 3, 3), _const("axes", np.array([2, 3], np.int64)),
             _const("ax2", np.array([2], np.int64)), _const("k", np.float32(4.0))]
    return _model(nodes, inits, [("x", (2, 5, 5))], (5,), opset=18)


def slice_div_tanh():
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"]),
             helper.make_node("Div", ["s", "d"], ["q"]),
             helper.make_node("Tanh", ["q"], ["t"]),
             helper.make_node("Sigmoid", ["t"], ["y"])]
    inits = [_const("st", np.array([1], np.int64)), _const("en", np.array([5], np.int64)),
             _const("ax", np.array([1], np.int64)), _const("d", np.float32(0.5))]
    return _model(nodes, inits, [("x", (8,))], (4,))


# A wrong divisor, shift or zero point costs far more than these margins (1/8 instead of 1/9
# is ~18 dB); pow2 rounds every scale up to a power of two, up to one bit (~6 dB) per tensor.
MIN_SQNR_DB = {"dyadic": 30.0, "pow2": 22.0}

CASES = [conv_transpose_gemm, two_inputs_sub_relu, maxpool_then_clamps, unfoldable_batchnorm,
         pad_avgpool_divisors, concat_gate_softmax, slice_div_tanh]


def _samples(model: onnx.ModelProto, n: int) -> np.ndarray:
    """Random samples; several inputs are packed flat in graph-input order (docs/verify.md)."""
    shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim[1:]] for i in model.graph.input]
    parts = [_Rng.generator.standard_normal((n, *s)).astype(np.float32) for s in shapes]
    return parts[0] if len(parts) == 1 else np.concatenate([p.reshape(n, -1) for p in parts], axis=1)


def _float_outputs(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds, offset = {}, 0
    for inp in session.get_inputs():
        shape = inp.shape[1:]
        size = int(np.prod(shape))
        feeds[inp.name] = x[:, offset:offset + size].reshape(len(x), *shape) if len(session.get_inputs()) > 1 else x
        offset += size
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("build", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("scale", ["dyadic", "pow2"])
def test_operator_graph_quantizes_close_to_float(tmp_path: Path, build, scale: str) -> None:
    _Rng.reset(f"{build.__name__}-{scale}")
    model = build()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    calib, test = _samples(model, 300), _samples(model, 100)
    graph = quantize_model(path, Dataset(calib, None, "calib"), QuantOptions(scale=ScaleMode(scale)),
                           progress=False)
    out = graph.outputs[0]
    got = evaluate.dequantize(graph, out, evaluate.run(graph, evaluate.quantize_input(graph, test))[out])
    want = _float_outputs(model, test)
    assert got.shape == want.shape
    error = got - want
    sqnr = 10 * np.log10(np.sum(want.astype(np.float64) ** 2) / np.sum(error ** 2))
    span = float(np.max(want) - np.min(want))
    assert sqnr >= MIN_SQNR_DB[scale], f"{build.__name__} {scale}: SQNR {sqnr:.1f} dB"
    assert np.mean(np.abs(error)) <= 0.01 * span, f"{build.__name__} {scale}: mean error {np.mean(np.abs(error)):.4g}"
