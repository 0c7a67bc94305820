"""The golden-model interpreter on a hand-built integer graph: conv -> add -> gap -> gemm."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from quant import ir
from quant.arith import requantize
from quant.errors import DataError
from quant.evaluate import dequantize, quantize_input, run
from quant.ops.checks import ContractError
from quant.qtypes import IntType, QParams

INT8 = IntType(8, True)
RNG = np.random.default_rng(0)
W_CONV = RNG.integers(-127, 128, (2, 2, 3, 3))
B_CONV = np.array([300, -200])
W_FC = np.array([[5, -7], [100, 3], [-20, -20]])
B_FC = np.array([1, 2, 3])


def spec(shape: tuple[int, ...], zero: int = 0, itype: IntType = INT8) -> ir.TensorSpec:
    return ir.TensorSpec(shape, QParams(0.05, zero, itype))


def requant(mult: list[int], shift: list[int], zero: int) -> ir.Requant:
    return ir.Requant(multiplier=np.array(mult), shift=np.array(shift), zero_point=zero, qmin=-128, qmax=127)


def small_graph() -> ir.IntGraph:
    ops = [
        ir.Conv(name="conv", inputs=["x"], outputs=["c"], weight=W_CONV, bias=B_CONV,
                requant=requant([20000, 17000], [22, 22], 4), strides=(1, 1), pads=(1, 1, 1, 1),
                dilations=(1, 1), group=1, pad_value=-3, acc_bits=np.array([24, 24])),
        ir.Add(name="add", inputs=["c", "x"], outputs=["s"], zero_a=4, zero_b=-3, mult_a=3, mult_b=5, shift=2,
               zero_point=-1, qmin=-128, qmax=127, acc_bits=13),
        ir.GlobalAvgPool(name="gap", inputs=["s"], outputs=["g"], input_zero_point=-1,
                         requant=requant([20972], [19], 0), acc_bits=14),
        ir.Reshape(name="flat", inputs=["g"], outputs=["f"], shape=(2,)),
        ir.Gemm(name="fc", inputs=["f"], outputs=["logits"], weight=W_FC, bias=B_FC,
                requant=requant([16384, 16384, 16384], [16, 17, 15], 0), acc_bits=np.array([13, 16, 14])),
    ]
    tensors = {"x": spec((2, 5, 5), -3), "c": spec((2, 5, 5), 4), "s": spec((2, 5, 5), -1),
               "g": spec((2, 1, 1)), "f": spec((2,)), "logits": spec((3,))}
    return ir.IntGraph(ops=ops, tensors=tensors, input="x", outputs=["logits"])


def reference(x: np.ndarray) -> dict[str, np.ndarray]:
    """The same network from torch (float64 on integers, exact) and plain integer formulas."""
    padded = F.pad(torch.from_numpy(x.astype(np.float64)), (1, 1, 1, 1), value=-3)
    acc = F.conv2d(padded, torch.from_numpy(W_CONV.astype(np.float64))).numpy().astype(np.int64)
    c = requantize(acc + B_CONV[:, None, None], np.array([20000, 17000])[:, None, None], 22, 4, -128, 127)
    s = np.clip(((c - 4) * 3 + (x + 3) * 5 + 2) // 4 - 1, -128, 127)  # round half up of acc / 2^2
    g = requantize((s + 1).sum(axis=(2, 3), keepdims=True), 20972, 19, 0, -128, 127)
    f = g.reshape(len(x), 2)
    logits = requantize(f @ W_FC.T + B_FC, 16384, np.array([16, 17, 15]), 0, -128, 127)
    return {"x": x, "c": c, "s": s, "g": g, "f": f, "logits": logits}


X = RNG.integers(-128, 128, (7, 2, 5, 5))


def test_run_matches_the_reference_network():
    out = run(small_graph(), X)
    assert list(out) == ["logits"]
    np.testing.assert_array_equal(out["logits"], reference(X)["logits"])
    assert out["logits"].dtype == np.int64
    assert len(np.unique(out["logits"])) > 3  # the test inputs exercise more than a saturated corner


def test_taps_return_every_tensor():
    taps = run(small_graph(), X, taps=True)
    expected = reference(X)
    assert set(taps) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(taps[name], value, err_msg=name)
        assert taps[name].dtype == np.int64, name  # whatever dtype stored it in between


def test_values_beyond_int8_keep_their_16_bit_storage():
    int16 = IntType(16, True)
    conv = small_graph().ops[0]
    conv.requant = ir.Requant(multiplier=np.array([20000, 17000]), shift=np.array([17, 17]), zero_point=4,
                              qmin=-(2**15), qmax=2**15 - 1)
    graph = ir.IntGraph(ops=[conv, ir.Reshape(name="flat", inputs=["c"], outputs=["f"], shape=(50,))],
                        tensors={"x": spec((2, 5, 5), -3), "c": spec((2, 5, 5), 4, int16),
                                 "f": spec((50,), 4, int16)},
                        input="x", outputs=["f"])
    padded = F.pad(torch.from_numpy(X.astype(np.float64)), (1, 1, 1, 1), value=-3)
    acc = F.conv2d(padded, torch.from_numpy(W_CONV.astype(np.float64))).numpy().astype(np.int64)
    c = requantize(acc + B_CONV[:, None, None], np.array([20000, 17000])[:, None, None], 17, 4,
                   -(2**15), 2**15 - 1)
    assert (np.abs(c) > 127).mean() > 0.5  # int8 storage would not do
    out = run(graph, X)["f"]
    np.testing.assert_array_equal(out, c.reshape(len(X), 50))
    assert out.dtype == np.int64


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
def test_batch_size_does_not_change_results(batch_size):
    whole = run(small_graph(), X, taps=True)
    chunked = run(small_graph(), X, taps=True, batch_size=batch_size)
    assert set(chunked) == set(whole)
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])


@pytest.mark.parametrize(("x", "message"), [
    (np.full((1, 2, 5, 5), 128), r"^input 'x' values \[128, 128\] are outside its type int8 \[-128, 127\]$"),
    (np.full((1, 2, 5, 5), -129), r"^input 'x' values \[-129, -129\] are outside"),
    (np.zeros((1, 2, 5, 5), np.float32), r"^input 'x' must be an integer array, not float32$"),
    (np.zeros((1, 2, 5, 4), np.int64), r"^integer input 'x' must have shape \(N, 2, 5, 5\), not \(1, 2, 5, 4\)$"),
])
def test_bad_input_is_a_data_error(x, message):
    with pytest.raises(DataError, match=message):
        run(small_graph(), x)


def test_op_output_outside_its_spec_is_a_contract_error():
    graph = small_graph()
    graph.tensors["c"] = spec((2, 5, 5), 4, IntType(4, True))  # conv still clamps to int8
    with pytest.raises(ContractError, match=r"^Conv 'conv' output 'c' values \[.*\] are outside its type int4"):
        run(graph, X)


def test_op_output_with_the_wrong_shape_is_a_contract_error():
    graph = small_graph()
    graph.tensors["f"] = spec((1, 2))
    with pytest.raises(ContractError, match=r"^Reshape 'flat' output 'f' has per-sample shape \(2,\)"):
        run(graph, X)


def test_quantize_input_and_dequantize_by_hand():
    graph = small_graph()
    graph.tensors["x"] = ir.TensorSpec((2, 5, 5), QParams(0.5, -3, INT8))
    x = np.zeros((1, 2, 5, 5))
    x[0, 0, 0, :5] = [1.25, -0.25, -0.3, 100.0, -100.0]
    q = quantize_input(graph, x)
    # floor(x/0.5 + 1/2) - 3: 2.5 -> 3 -> 0; -0.5 -> 0 -> -3; -0.6 -> -1 -> -4; 200 -> 197 -> 127; -203 -> -128
    np.testing.assert_array_equal(q[0, 0, 0], [0, -3, -4, 127, -128])
    np.testing.assert_array_equal(dequantize(graph, "x", q[0, 0, 0]), [1.5, 0.0, -0.5, 65.0, -62.5])


def test_quantize_input_checks_shape_and_dequantize_checks_names():
    with pytest.raises(DataError, match=r"^float input 'x' must have shape \(N, 2, 5, 5\)"):
        quantize_input(small_graph(), np.zeros((3, 50)))
    with pytest.raises(DataError, match="^graph 'intforge' has no tensor named 'nope'$"):
        dequantize(small_graph(), "nope", np.zeros(3))



@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_quantize_input_is_the_contract_quantizer(dtype):
    """evaluate.quantize_input computes QParams.quantize in place; the two must agree bit for bit."""
    graph = small_graph()
    qparams = QParams(0.037, 5, INT8)
    graph.tensors["x"] = ir.TensorSpec((2, 5, 5), qparams)
    rng = np.random.default_rng(16)
    ties = (np.arange(-150, 150) + 0.5) * qparams.scale  # x / s lands on (or next to) k + 1/2
    values = np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf),
                             rng.normal(0, 3, 200), [0.0, -0.0, 1e30, -1e30, np.inf, -np.inf]])
    x = np.resize(values, (len(values) // 50 + 1, 2, 5, 5)).astype(dtype) if dtype != np.int64 else \
        rng.integers(-300, 300, (9, 2, 5, 5))
    got = quantize_input(graph, x)
    np.testing.assert_array_equal(got, qparams.quantize(x))
    assert got.dtype == np.int64
