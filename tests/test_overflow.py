# amaranth: UnusedElaboratable=no
"""Overflow is impossible by construction, checked per operator class on BOTH sides: a
one-operator float model is quantized, then driven with the worst inputs its input type allows
(for Conv and Gemm, qmax where a channel's weight is positive and qmin elsewhere, and the
mirror image; for the others all-qmax, all-qmin and alternating). The golden model checks
every accumulator and output against its recorded width and raises on a violation; the RTL
accelerator on Verilator must give the same bits (a wrapped accumulator would not)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hw.lower import Accelerator
from hw.plan import make_plan
from quant import evaluate, ir
from quant.data import Dataset
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from sim.network import simulate

RNG_SEED = 5
SHAPE = (3, 3, 3)


def _model(kind: str, rng: np.random.Generator) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """A one-operator float model (input 'x') whose quantized graph's first op is `kind`."""
    c, h, w = SHAPE
    inits, shape = [], SHAPE

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    if kind == "Conv":  # one window: the kernel covers the whole input
        node = helper.make_node("Conv", ["x", const("w", rng.normal(0, 1, (4, c, h, w))),
                                         const("b", rng.normal(0, 1, 4))], ["y"], kernel_shape=[h, w])
    elif kind == "Gemm":
        shape = (12,)
        node = helper.make_node("Gemm", ["x", const("w", rng.normal(0, 1, (5, 12))),
                                         const("b", rng.normal(0, 1, 5))], ["y"], transB=1)
    elif kind == "AvgPool":
        node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])
    elif kind == "GlobalAvgPool":
        node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    elif kind in ("Add", "Mul"):  # x and a monotone function of x: both extremes together
        # (not Add(x, x): quant.evaluate.run drops a tensor read twice by one op twice, KeyError)
        inner = helper.make_node("Relu" if kind == "Add" else "Sigmoid", ["x"], ["r"])
        node = helper.make_node(kind, ["x", "r"], ["y"])
        graph = helper.make_graph([inner, node], kind, [_info("x", shape)], [_info("y", None)], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), shape
    else:  # Affine: per-channel scale of both signs, and offset
        scale = np.array([1.7, -0.6, 0.3]).reshape(c, 1, 1)
        mul = helper.make_node("Mul", ["x", const("a", scale)], ["m"])
        node = helper.make_node("Add", ["m", const("d", rng.normal(0, 1, (c, 1, 1)))], ["y"])
        graph = helper.make_graph([mul, node], kind, [_info("x", shape)], [_info("y", None)], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), shape
    graph = helper.make_graph([node], kind, [_info("x", shape)], [_info("y", None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), shape


def _info(name: str, shape: tuple[int, ...] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None if shape is None else ["N", *shape])


def _worst_inputs(graph: ir.IntGraph) -> np.ndarray:
    """The extreme input patterns of the graph's first op (see the module docstring)."""
    op, spec = graph.ops[0], graph.input_spec
    lo, hi = spec.itype.qmin, spec.itype.qmax
    if isinstance(op, (ir.Conv, ir.Gemm)):
        signs = np.sign(op.weight).reshape(len(op.weight), *spec.shape)
        return np.concatenate([np.where(signs > 0, hi, lo), np.where(signs > 0, lo, hi)]).astype(np.int64)
    patterns = [np.full(spec.shape, hi), np.full(spec.shape, lo),
                np.resize([lo, hi], int(np.prod(spec.shape))).reshape(spec.shape)]
    if isinstance(op, ir.Affine):  # per channel, the sign of A picks the extreme
        a = np.broadcast_to(np.sign(op.scale), spec.shape)
        patterns += [np.where(a > 0, hi, lo), np.where(a > 0, lo, hi)]
    return np.stack(patterns).astype(np.int64)


OPS = {"Conv": ir.Conv, "Gemm": ir.Gemm, "AvgPool": ir.AvgPool, "GlobalAvgPool": ir.GlobalAvgPool,
       "Add": ir.Add, "Mul": ir.Mul, "Affine": ir.Affine}


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("kind", list(OPS))
def test_worst_inputs_fit_the_recorded_widths_in_golden(kind: str, bits: int, tmp_path: Path) -> None:
    graph = _quantized(kind, bits, tmp_path)
    xq = _worst_inputs(graph)
    out = evaluate.run(graph, xq, taps=True)  # raises WidthError/ContractError on any overflow
    assert out[graph.outputs[0]].shape[0] == len(xq)


@pytest.mark.parametrize("kind", list(OPS))
def test_worst_inputs_give_golden_bits_on_rtl(kind: str, tmp_path: Path) -> None:
    graph = _quantized(kind, 4, tmp_path)
    accelerator = Accelerator(graph, make_plan(graph, multipliers=8))
    run = simulate(accelerator, graph, _worst_inputs(graph), "verilator", tmp_path, gap=0.2, stall=0.2, seed=3)
    assert run.mismatches == 0, f"{kind}: RTL != golden, first {run.first_mismatch}"


def _quantized(kind: str, bits: int, tmp_path: Path) -> ir.IntGraph:
    """The quantized model; it must hold a `kind` op (or the test tests nothing)."""
    rng = np.random.default_rng(RNG_SEED)
    model, shape = _model(kind, rng)
    path = tmp_path / f"{kind}.onnx"
    onnx.save(model, path)
    calib = Dataset(rng.normal(0.3, 1, (64, *shape)).astype(np.float32), None, "calib")
    graph = quantize_model(path, calib, QuantOptions(weight_bits=bits, act_bits=bits), progress=False)
    assert any(isinstance(op, OPS[kind]) for op in graph.ops), [type(op).__name__ for op in graph.ops]
    return graph
