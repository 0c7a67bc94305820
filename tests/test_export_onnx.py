"""The integer ONNX export: float-free, standard, and bit-exact to the golden model.

onnxruntime runs each export and its outputs (and, with `check(layers=True)`, every inner
tensor) are compared with `quant.evaluate.run`, the independent golden model; the floor
shift and the integer softmax are also checked against hand-computed vectors. The quantized
zoo models are checked at the bottom of this file.
"""
from __future__ import annotations

import os
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant import intfile, ir
from quant.check import check
from quant.data import Dataset
from quant.errors import DataError, ModelError
from quant.evaluate import run
from quant.export import export_onnx, float_values, load_onnx, run_onnx, save_onnx
from quant.export.registry import LOWERINGS, lowering_for
from quant.options import QuantOptions, ScaleMode
from quant.pipeline import quantize_model
from quant.qtypes import IntType, QParams, signed_bits_for

I8, U8, I16 = IntType(8, True), IntType(8, False), IntType(16, True)


def spec(shape: tuple[int, ...], itype: IntType = I8, zero: int = 0) -> ir.TensorSpec:
    return ir.TensorSpec(shape, QParams(0.05, zero, itype))


def requant(channels: int, rng: np.random.Generator, shift: tuple[int, int] = (18, 22), zero: int = 0,
            itype: IntType = I8) -> ir.Requant:
    return ir.Requant(multiplier=rng.integers(1 << 13, 1 << 15, channels), shift=rng.integers(*shift, channels),
                      zero_point=zero, qmin=itype.qmin, qmax=itype.qmax)


def linear_bits(weight: np.ndarray, bias: np.ndarray, x_max: int) -> np.ndarray:
    """SPEC's bound per output channel: sum|w_c| * max|x| + |b_c|."""
    sums = np.abs(weight).reshape(len(weight), -1).sum(axis=1)
    return np.array([signed_bits_for(int(s) * x_max + abs(int(b))) for s, b in zip(sums, bias)])


def random_input(graph: ir.IntGraph, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform over the input type, with the first two samples at qmin and qmax."""
    itype = graph.input_spec.itype
    xq = rng.integers(itype.qmin, itype.qmax + 1, (n, *graph.input_spec.shape))
    xq[0], xq[1] = itype.qmin, itype.qmax
    return xq


def assert_exact(graph: ir.IntGraph, xq: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the export equals the golden model's, element for element."""
    golden = run(graph, xq, taps=True)
    names = [out for op in graph.ops for out in op.outputs]
    ours = run_onnx(export_onnx(graph), xq, extra_outputs=names)
    for name in names:
        assert ours[name].dtype == np.int64
        np.testing.assert_array_equal(ours[name], golden[name], err_msg=f"tensor '{name}'")
    return ours


def conv_graph(rng: np.random.Generator, *, c_in: int = 4, c_out: int = 6, hw: tuple[int, int] = (7, 6),
               kernel: tuple[int, int] = (3, 3), group: int = 1, strides: tuple[int, int] = (1, 1),
               pads: tuple[int, int, int, int] = (0, 0, 0, 0), dilations: tuple[int, int] = (1, 1),
               x_type: IntType = I8, pad_value: int = 0) -> ir.IntGraph:
    x_max = max(-x_type.qmin, x_type.qmax)
    weight = rng.integers(-127, 128, (c_out, c_in // group, *kernel))
    bias = rng.integers(-5000, 5000, c_out)
    size = (hw[0] + pads[0] + pads[2], hw[1] + pads[1] + pads[3])
    out_hw = tuple((s - (k - 1) * d - 1) // st + 1 for s, k, d, st in zip(size, kernel, dilations, strides))
    shift = (18, 22) if x_type.bits <= 8 else (26, 30)
    conv = ir.Conv(name="conv", inputs=["x"], outputs=["y"], weight=weight, bias=bias,
                   requant=requant(c_out, rng, shift, zero=-3), strides=strides, pads=pads,
                   dilations=dilations, group=group, pad_value=pad_value,
                   acc_bits=linear_bits(weight, bias, x_max))
    return ir.IntGraph(ops=[conv], tensors={"x": spec((c_in, *hw), x_type), "y": spec((c_out, *out_hw), I8, -3)},
                       input="x", outputs=["y"])


@pytest.mark.parametrize("params", [
    {},
    {"kernel": (1, 1)},
    {"strides": (2, 1), "pads": (1, 0, 2, 1), "pad_value": -7},
    {"dilations": (2, 1), "kernel": (2, 3), "pads": (1, 1, 1, 1)},
    {"group": 2, "strides": (1, 2)},
    {"group": 4, "c_out": 8, "pads": (1, 1, 1, 1), "pad_value": 5},  # depthwise, multiplier 2
    {"x_type": I16, "pad_value": -300},  # 16-bit activations: beyond ConvInteger's 8 bits
])
def test_conv_is_exact(params: dict) -> None:
    rng = np.random.default_rng(1)
    graph = conv_graph(rng, **params)
    assert_exact(graph, random_input(graph, 6, rng))


def test_conv_extreme_operands_do_not_saturate() -> None:
    """x = 255 against w = 127: a u8 x s8 kernel summing product pairs in 16-bit lanes
    (255*127*2 = 64770 > 32767) would saturate; the int64 MatMul must not."""
    rng = np.random.default_rng(2)
    graph = conv_graph(rng, c_in=8, x_type=U8)
    conv = graph.ops[0]
    conv.weight[:] = 127
    conv.weight[1::2] = -127
    conv.bias[:] = 0
    conv.acc_bits = linear_bits(conv.weight, conv.bias, 255)
    conv.requant.multiplier[:] = 1 << 14
    conv.requant.shift[:] = 32
    xq = np.full((2, 8, 7, 6), 255)
    ours = assert_exact(graph, xq)
    # acc = +-(127 * 255 * 72) = +-2331720; acc * 2^14 / 2^32 = +-8.89, rounded half up: 9 and -9;
    # plus z = -3. Saturated pair sums (36 * 32767 = 1179612) would give 4 and -5 instead.
    assert set(ours["y"][:, 0::2].ravel().tolist()) == {6}
    assert set(ours["y"][:, 1::2].ravel().tolist()) == {-12}


def test_gemm_on_batched_rows_is_exact() -> None:
    rng = np.random.default_rng(3)
    weight, bias = rng.integers(-127, 128, (5, 12)), rng.integers(-900, 900, 5)
    gemm = ir.Gemm(name="fc", inputs=["x"], outputs=["y"], weight=weight, bias=bias,
                   requant=requant(5, rng, zero=4), acc_bits=linear_bits(weight, bias, 255))
    graph = ir.IntGraph(ops=[gemm], tensors={"x": spec((3, 12), U8), "y": spec((3, 5), I8, 4)},
                        input="x", outputs=["y"])
    assert_exact(graph, random_input(graph, 5, rng))


def affine_graph(values: list[int], shift: int, x_type: IntType, scale: int = 1) -> ir.IntGraph:
    """y = (x * scale + 2^(n-1)) >> n, with a clamp that never binds."""
    wide = IntType(63, True)
    op = ir.Affine(name="shift", inputs=["x"], outputs=["y"], input_zero_point=0, scale=np.array(scale),
                   offset=np.array(0), shift=shift, zero_point=0, qmin=wide.qmin, qmax=wide.qmax,
                   acc_bits=signed_bits_for(max(-x_type.qmin, x_type.qmax) * scale))
    return ir.IntGraph(ops=[op], tensors={"x": spec((len(values),), x_type), "y": spec((len(values),), wide)},
                       input="x", outputs=["y"])


@pytest.mark.parametrize(("shift", "values", "expected"), [
    # n = 1: (x + 1) >> 1, a floor: -3 -> -1 (tie -1.5 up), -2 -> -1, -1 -> 0 (tie), 1 -> 1, 3 -> 2
    (1, [-3, -2, -1, 0, 1, 2, 3], [-1, -1, 0, 0, 1, 1, 2]),
    # n = 2: (x + 2) >> 2: -7 -> -2 (-1.75), -6 -> -1 (tie -1.5 up), -5 -> -1, -2 -> 0 (tie), 5 -> 1, 6 -> 2
    (2, [-7, -6, -5, -2, 2, 5, 6], [-2, -1, -1, 0, 1, 1, 2]),
    # n = 4 on int8 extremes: (-128 + 8) >> 4 = -120/16 -> -8 (floor of -7.5), (127 + 8) >> 4 = 8
    (4, [-128, -9, -8, -7, 127], [-8, -1, 0, 0, 8]),
])
def test_rounding_shift_matches_hand_vectors(shift: int, values: list[int], expected: list[int]) -> None:
    graph = affine_graph(values, shift, I8)
    ours = run_onnx(export_onnx(graph), np.array([values]))
    assert ours["y"].tolist() == [expected]


def test_rounding_shift_is_exact_near_int64_limits() -> None:
    """acc = x * (2^45 - 1) reaches 2^60 in magnitude, far past float64's exact 2^53."""
    scale, shift = (1 << 45) - 1, 50
    values = [-(1 << 15), -(1 << 15) + 1, -3, -1, 0, 1, (1 << 15) - 1]
    graph = affine_graph(values, shift, I16, scale)
    ours = run_onnx(export_onnx(graph), np.array([values]))
    expected = [(v * scale + (1 << (shift - 1))) // (1 << shift) for v in values]  # Python ints: exact floor
    assert ours["y"].tolist() == [expected]


def pool_graph(op: ir.Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...], out_zero: int = 0
               ) -> ir.IntGraph:
    return ir.IntGraph(ops=[op], tensors={"x": spec(in_shape, I8, -2), "y": spec(out_shape, I8, out_zero)},
                       input="x", outputs=["y"])


@pytest.mark.parametrize(("kernel", "strides", "pads", "dilations", "out_hw"), [
    ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1), (3, 3)),
    ((3, 2), (1, 2), (1, 0, 1, 1), (1, 1), (6, 4)),
    ((2, 2), (1, 1), (0, 0, 0, 0), (2, 2), (4, 5)),
])
def test_max_pool_is_exact(kernel, strides, pads, dilations, out_hw) -> None:
    op = ir.MaxPool(name="pool", inputs=["x"], outputs=["y"], kernel=kernel, strides=strides, pads=pads,
                    dilations=dilations, pad_value=I8.qmin)
    graph = pool_graph(op, (3, 6, 7), (3, *out_hw), out_zero=-2)
    assert_exact(graph, random_input(graph, 4, np.random.default_rng(4)))


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool_with_several_divisors_is_exact(count_include_pad: bool) -> None:
    """3x3 windows, padding 1, stride 2 over 7x6: corner windows hold 4 real elements, edges 6,
    the inside 9; each divisor has its own requantizer."""
    divisors = np.array([9]) if count_include_pad else np.array([4, 6, 9])
    rq = ir.Requant(multiplier=np.array([29127, 21845, 29127])[-len(divisors):],
                    shift=np.array([17, 17, 18])[-len(divisors):], zero_point=1, qmin=-128, qmax=127)
    op = ir.AvgPool(name="avg", inputs=["x"], outputs=["y"], kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
                    count_include_pad=count_include_pad, input_zero_point=-2, divisors=divisors, requant=rq,
                    acc_bits=signed_bits_for(9 * 255))
    graph = pool_graph(op, (2, 7, 6), (2, 4, 3), out_zero=1)
    assert_exact(graph, random_input(graph, 4, np.random.default_rng(5)))


def test_avg_pool_without_requantizer_for_a_divisor_is_refused() -> None:
    rq = ir.Requant(multiplier=np.array([1]), shift=np.array([3]), zero_point=0, qmin=-128, qmax=127)
    op = ir.AvgPool(name="avg", inputs=["x"], outputs=["y"], kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1),
                    count_include_pad=False, input_zero_point=0, divisors=np.array([9]), requant=rq, acc_bits=13)
    with pytest.raises(ModelError, match=r"^AvgPool 'avg': window counts \[4, 6\] have no requantizer"):
        export_onnx(pool_graph(op, (2, 7, 6), (2, 4, 3)))


def softmax_graph(table: list[int], out_range: int, qmax: int, classes: int) -> ir.IntGraph:
    op = ir.Softmax(name="softmax", inputs=["x"], outputs=["y"], axis=-1, exp_table=np.array(table),
                    out_range=out_range, qmax=qmax)
    bits = (len(table) - 1).bit_length()
    return ir.IntGraph(ops=[op], tensors={"x": spec((classes,), IntType(bits, True)),
                                          "y": spec((classes,), IntType(8, False))},
                       input="x", outputs=["y"])


def test_softmax_matches_hand_vectors() -> None:
    """Table exp(d) for d = -3..0 is [1, 2, 4, 8] (indices d + 3).
    x = [1, 0, -2]: d = [0, -1, -3], e = [8, 4, 1], sum 13; y = (e*255 + 6) // 13 = [157, 78, 20].
    x = [0, 0, 0]: e = [8, 8, 8], sum 24: y = (8*255 + 12) // 24 = 85 each.
    x = [-2, 1, 1]: d = [-3, 0, 0], e = [1, 8, 8], sum 17: y = [(255+8)//17, (2040+8)//17 ...] = [15, 120, 120]."""
    graph = softmax_graph([1, 2, 4, 8], 255, 255, 3)  # 2-bit input: x in [-2, 1], d in [-3, 0]
    xq = np.array([[1, 0, -2], [0, 0, 0], [-2, 1, 1]])
    assert run_onnx(export_onnx(graph), xq)["y"].tolist() == [[157, 78, 20], [85, 85, 85], [15, 120, 120]]
    assert_exact(graph, xq)


def test_softmax_argmax_gather_head_is_exact() -> None:
    """Softmax over 10 classes with a realistic table, then ArgMax (ties pick the first index)
    and Gather mapping the class index to a label."""
    table = np.round(2.0 ** 14 * np.exp(np.arange(-255, 1) / 24.0)).astype(np.int64)
    ops = [ir.Softmax(name="softmax", inputs=["x"], outputs=["p"], axis=1, exp_table=table, out_range=255,
                      qmax=255),
           ir.ArgMax(name="argmax", inputs=["x"], outputs=["k"], axis=1, keepdims=False),
           ir.Gather(name="label", inputs=["k"], outputs=["y"], table=np.arange(100, 110))]
    graph = ir.IntGraph(ops=ops, tensors={"x": spec((10,)), "p": spec((10,), U8), "k": spec((), U8),
                                          "y": spec((), U8)}, input="x", outputs=["p", "y"])
    xq = random_input(graph, 8, np.random.default_rng(6))
    xq[2] = [3, 9, 1, 9, 9, 0, 0, 0, 0, 0]  # ties: the first maximum (index 1) wins
    ours = assert_exact(graph, xq)
    assert ours["y"][2] == 101


def every_op_graph(rng: np.random.Generator) -> ir.IntGraph:
    """One graph with every integer operator class, each with non-trivial parameters."""
    w_conv, b_conv = rng.integers(-127, 128, (4, 2, 3, 3)), rng.integers(-800, 800, 4)
    w_fc, b_fc = rng.integers(-127, 128, (10, 80)), rng.integers(-800, 800, 10)
    lut = np.clip(np.round(127 * np.tanh(np.arange(-128, 128) / 40)), -128, 127).astype(np.int64)
    exp_table = np.round(2.0 ** 12 * np.exp(np.arange(-255, 1) / 32.0)).astype(np.int64)
    ops = [
        ir.Conv(name="conv", inputs=["x"], outputs=["c"], weight=w_conv, bias=b_conv,
                requant=ir.Requant(multiplier=rng.integers(1 << 13, 1 << 15, 4), shift=rng.integers(19, 22, 4),
                                   zero_point=0, qmin=0, qmax=255),
                strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), group=1, pad_value=-2,
                acc_bits=linear_bits(w_conv, b_conv, 128)),
        ir.MaxPool(name="maxpool", inputs=["c"], outputs=["m"], kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                   dilations=(1, 1), pad_value=0),
        ir.AvgPool(name="avgpool", inputs=["m"], outputs=["a"], kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                   count_include_pad=False, input_zero_point=0, divisors=np.array([4, 6, 9]),
                   requant=ir.Requant(multiplier=np.array([16384, 21845, 29127]), shift=np.array([16, 17, 18]),
                                      zero_point=0, qmin=0, qmax=255), acc_bits=signed_bits_for(9 * 255)),
        ir.GlobalAvgPool(name="gap", inputs=["a"], outputs=["g"], input_zero_point=0,
                         requant=ir.Requant(multiplier=np.array([23000]), shift=np.array([16]), zero_point=3,
                                            qmin=0, qmax=255),
                         acc_bits=signed_bits_for(9 * 255)),
        ir.Add(name="add", inputs=["a", "g"], outputs=["s"], zero_a=0, zero_b=3, mult_a=300, mult_b=-200,
               shift=9, zero_point=-5, qmin=-128, qmax=127, acc_bits=signed_bits_for(255 * 300 + 258 * 200)),
        ir.Mul(name="mul", inputs=["s", "a"], outputs=["p"], zero_a=-5, zero_b=0, multiplier=19000, shift=22,
               zero_point=2, qmin=-128, qmax=127, acc_bits=signed_bits_for(133 * 255)),
        ir.Affine(name="affine", inputs=["p"], outputs=["f"], input_zero_point=2,
                  scale=np.array([3, -5, 7, 2]).reshape(4, 1, 1), offset=np.array([10, 0, -40, 7]).reshape(4, 1, 1),
                  shift=2, zero_point=0, qmin=-128, qmax=127, acc_bits=signed_bits_for(130 * 7 + 40)),
        ir.Clamp(name="relu", inputs=["f"], outputs=["k"], low=-20, high=127),
        ir.Lut(name="tanh", inputs=["k"], outputs=["l"], table=lut, input_min=-128),
        ir.Concat(name="concat", inputs=["l", "a"], outputs=["cc"], axis=1),
        ir.Pad(name="pad", inputs=["cc"], outputs=["pd"], pads=(0, 0, 1, 0, 0, 0, 0, 2), value=-9),
        ir.Slice(name="slice", inputs=["pd"], outputs=["sl"], starts=(1, -10), ends=(3, 100), axes=(2, -1)),
        ir.Transpose(name="transpose", inputs=["sl"], outputs=["tr"], perm=(0, 2, 1, 3)),
        ir.Reshape(name="flatten", inputs=["tr"], outputs=["r"], shape=(-1,)),
        ir.Gemm(name="fc", inputs=["r"], outputs=["z"], weight=w_fc, bias=b_fc,
                requant=requant(10, rng, zero=-1), acc_bits=linear_bits(w_fc, b_fc, 255)),
        ir.Softmax(name="softmax", inputs=["z"], outputs=["prob"], axis=-1, exp_table=exp_table, out_range=255,
                   qmax=255),
        ir.ArgMax(name="argmax", inputs=["z"], outputs=["am"], axis=1, keepdims=False),
        ir.Gather(name="label", inputs=["am"], outputs=["label"], table=np.arange(10) * 3 - 4),
    ]
    tensors = {"x": spec((2, 6, 6), I8, -2), "c": spec((4, 6, 6), U8), "m": spec((4, 3, 3), U8),
               "a": spec((4, 3, 3), U8), "g": spec((4, 1, 1), U8, 3), "s": spec((4, 3, 3), I8, -5),
               "p": spec((4, 3, 3), I8, 2), "f": spec((4, 3, 3)), "k": spec((4, 3, 3)), "l": spec((4, 3, 3)),
               "cc": spec((8, 3, 3), I16), "pd": spec((8, 4, 5), I16), "sl": spec((8, 2, 5), I16),
               "tr": spec((2, 8, 5), I16), "r": spec((80,), I16), "z": spec((10,), I8, -1), "prob": spec((10,), U8), "am": spec((), U8),
               "label": spec((), I8)}
    return ir.IntGraph(ops=ops, tensors=tensors, input="x", outputs=["prob", "label", "z"], name="every_op")


def test_every_operator_class_has_a_lowering() -> None:
    assert set(LOWERINGS) == set(ir.OP_CLASSES)
    assert {type(op) for op in every_op_graph(np.random.default_rng(0)).ops} == set(ir.OP_CLASSES)


def test_every_op_graph_is_exact_at_every_layer() -> None:
    rng = np.random.default_rng(7)
    graph = every_op_graph(rng)
    report = check(graph, graph.input_spec.qparams.dequantize(random_input(graph, 16, rng)), layers=True)
    assert report.ok, str(report)
    assert list(report.by_tensor) == [op.outputs[0] for op in graph.ops]
    assert report.checked == sum(16 * int(np.prod(graph.tensors[op.outputs[0]].shape)) for op in graph.ops)


def test_export_is_exact_without_graph_optimizations_and_on_storage_types() -> None:
    """onnxruntime's optimizer must not matter, and xq may come in its storage type (int8)."""
    rng = np.random.default_rng(10)
    graph = every_op_graph(rng)
    xq = random_input(graph, 8, rng)
    golden = run(graph, xq)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(export_onnx(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    plain = session.run(graph.outputs, {"x": xq})
    stored = run_onnx(export_onnx(graph), xq.astype(np.int8))
    for name, value in zip(graph.outputs, plain):
        np.testing.assert_array_equal(value, golden[name], err_msg=name)
        np.testing.assert_array_equal(stored[name], golden[name], err_msg=name)


def test_export_is_standard_and_has_no_float_anywhere() -> None:
    model = export_onnx(every_op_graph(np.random.default_rng(0)))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 18)]
    assert {node.domain for node in model.graph.node} == {""}
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert len(inferred.graph.value_info) > len(model.graph.value_info)  # inference saw inner values
    assert float_values(inferred) == []
    types = [info.type.tensor_type.elem_type for info in
             [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]]
    assert set(types) == {TensorProto.INT64}
    assert [o.name for o in model.graph.output] == ["prob", "label", "z"]
    assert model.graph.input[0].name == "x"


def _float_model(place: str) -> onnx.ModelProto:
    """A small integer model with one float hidden at `place`."""
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1])
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    nodes = [helper.make_node("Add", ["x", "one"], ["y"], name="add")]
    inits, infos = [one], []
    if place == "initializer":
        inits.append(numpy_helper.from_array(np.array([1.0], np.float32), "unused"))
    elif place == "constant":
        nodes.append(helper.make_node("Constant", [], ["c"], name="const",
                                      value=numpy_helper.from_array(np.array(0.5, np.float32))))
    elif place == "float attribute":
        nodes.append(helper.make_node("Constant", [], ["c"], name="const", value_float=0.5))
    elif place == "value_info":
        infos.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]))
    elif place == "cast":  # only shape inference reveals the float
        nodes = [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
                 helper.make_node("Cast", ["f"], ["y"], to=TensorProto.INT64)]
    elif place == "subgraph":
        inner = helper.make_graph([helper.make_node("Constant", [], ["z"], value=numpy_helper.from_array(
            np.array(1.5, np.float64)))], "inner", [], [helper.make_tensor_value_info("z", TensorProto.DOUBLE, [])])
        nodes.append(helper.make_node("If", ["b"], ["o"], then_branch=inner, else_branch=inner))
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits, value_info=infos)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("place", ["initializer", "constant", "float attribute", "value_info", "cast", "subgraph"])
def test_float_walker_finds_a_float_in_each_place(place: str) -> None:
    model = _float_model(place)
    assert float_values(onnx.shape_inference.infer_shapes(model)) != []


def test_float_walker_accepts_the_integer_model() -> None:
    assert float_values(onnx.shape_inference.infer_shapes(_float_model("none"))) == []


def test_save_onnx_writes_atomically(tmp_path) -> None:
    graph = every_op_graph(np.random.default_rng(0))
    path = tmp_path / "model.onnx"
    model = save_onnx(graph, path)
    assert load_onnx(path) == model
    path.write_bytes(b"previous")
    broken = ir.IntGraph(ops=[ir.Op(name="mystery", inputs=["x"], outputs=["y"])],
                         tensors={"x": spec((2,)), "y": spec((2,))}, input="x", outputs=["y"])
    with pytest.raises(ModelError, match=r"^Op 'mystery' has no ONNX export$"):
        save_onnx(broken, path)
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.parametrize(("content", "message"), [
    (b"\x08\x07garbage\xff\xff", r"not an ONNX model \(unreadable or truncated protobuf\)$"),
    ("float", r"not an integer model: initializer 'unused' is floating point$"),
    ("cast", r"not an integer model: value_info 'f' is floating point$"),
    ("custom domain", r"it uses operator domain\(s\) com.example$"),
])
def test_load_onnx_refuses_corrupt_or_float_files(tmp_path, content, message) -> None:
    path = tmp_path / "bad.onnx"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        model = _float_model({"float": "initializer", "cast": "cast"}.get(content, "none"))
        if content == "custom domain":
            model.graph.node[0].domain = "com.example"
            model.opset_import.append(helper.make_opsetid("com.example", 1))
        onnx.save(model, path)
    with pytest.raises(ModelError) as info:
        load_onnx(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and re.search(message, text), text


def test_load_onnx_missing_file(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"nope.onnx: no such model file$"):
        load_onnx(tmp_path / "nope.onnx")


def test_run_onnx_and_check_refuse_mismatched_data() -> None:
    graph = conv_graph(np.random.default_rng(8))
    model = export_onnx(graph)
    with pytest.raises(DataError, match=r"^input 'x' must have shape \(N, 4, 7, 6\), not \(2, 4, 6, 7\)$"):
        run_onnx(model, np.zeros((2, 4, 6, 7), np.int64))
    with pytest.raises(DataError, match=r"^input 'x' must be an integer array, not float32$"):
        run_onnx(model, np.zeros((2, 4, 7, 6), np.float32))
    with pytest.raises(DataError, match=r"must have shape \(N, 4, 7, 6\)"):
        check(graph, np.zeros((2, 4, 7), np.float32))


def test_check_finds_the_first_mismatching_layer() -> None:
    """Tamper with the exported Gemm bias: the conv before it still agrees, the Gemm is
    reported first, with the index and both values."""
    rng = np.random.default_rng(9)
    graph = every_op_graph(rng)
    model = export_onnx(graph)
    bias = next(t for t in model.graph.initializer if t.name == "fc/bias")
    tampered = numpy_helper.to_array(bias).copy()
    tampered[3] += 1 << 12
    bias.CopyFrom(numpy_helper.from_array(tampered, "fc/bias"))
    x = graph.input_spec.qparams.dequantize(random_input(graph, 10, rng))
    report = check(graph, x, layers=True, model=model)
    assert not report.ok
    assert report.first is not None and report.first.tensor == "z" and report.first.op == "fc"
    assert report.first.index[1] == 3 and report.first.golden != report.first.onnx
    assert all(report.by_tensor[op.outputs[0]] == 0 for op in graph.ops[:14])
    golden = run(graph, graph.input_spec.qparams.quantize(x))["z"]
    assert report.first.golden == golden[report.first.index]
    outputs_only = check(graph, x, model=model)
    assert outputs_only.first is not None and outputs_only.first.tensor == "prob"
    assert list(outputs_only.by_tensor) == ["prob", "label", "z"]


def test_unknown_op_class_has_no_lowering() -> None:
    with pytest.raises(ModelError, match=r"^Op 'mystery' has no ONNX export$"):
        lowering_for(ir.Op(name="mystery", inputs=[], outputs=[]))


ZOO = ["mlp", "cnn_bn", "resnet_gap", "dwsep", "gated", "sklearn_mlp"]
MODES = [(8, ScaleMode.DYADIC), (8, ScaleMode.POW2), (4, ScaleMode.DYADIC), (4, ScaleMode.POW2)]


def flat_if_sklearn(name: str, data: Dataset) -> Dataset:
    """The sklearn model takes the 8x8 digits flattened to 64 features."""
    return Dataset(data.x.reshape(len(data), 64), data.y, data.source) if name == "sklearn_mlp" else data


@pytest.mark.parametrize(("weight_bits", "scale"), MODES, ids=lambda v: getattr(v, "value", f"W{v}A8"))
@pytest.mark.parametrize("name", [*ZOO, "digits_cnn"])
def test_quantized_models_are_exact_on_the_test_split(name, weight_bits, scale, zoo_path, repo_root,
                                                      digits_calib, digits_test) -> None:
    path = repo_root / "models" / "digits_cnn.onnx" if name == "digits_cnn" else zoo_path(name)
    options = QuantOptions(weight_bits=weight_bits, act_bits=8, scale=scale)
    graph = quantize_model(path, flat_if_sklearn(name, digits_calib), options, progress=False)
    report = check(graph, flat_if_sklearn(name, digits_test).x, layers=True)
    assert report.mismatches == 0, str(report)
    assert report.samples == len(digits_test) and len(report.by_tensor) == len(graph.ops)


def test_integer_file_round_trip_exports_the_same_bits(tmp_path, zoo_path, digits_calib, digits_test) -> None:
    """What `intforge export-onnx` does: load the saved integer model, export, run."""
    graph = quantize_model(zoo_path("gated"), digits_calib, QuantOptions(), progress=False)
    intfile.save(graph, tmp_path / "gated.int.onnx")
    save_onnx(intfile.load(tmp_path / "gated.int.onnx"), tmp_path / "gated.export.onnx")
    report = check(graph, digits_test.x, layers=True, model=load_onnx(tmp_path / "gated.export.onnx"))
    assert report.ok and report.checked > 0, str(report)
