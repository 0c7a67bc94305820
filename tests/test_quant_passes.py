"""Each prepare pass on a small hand-built ONNX graph: the pass fires (the prepared graph has
the expected operators, `op+clamp` for a fused activation) and the prepared graph computes
what onnxruntime computes on the original model, on random inputs. Cases where a rewrite
would be wrong check that it does not fire."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant.float_run import run_float
from quant.graph import Graph
from quant.onnx_import import load_model
from quant.passes import canonical_reshape, fold_shape
from quant.prepare import prepare, run_flow

RNG = np.random.default_rng(7)


def w(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def f32(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def scalar(value: float) -> np.ndarray:
    return np.array(value, np.float32)


def x_for(model: onnx.ModelProto, batch: int = 5) -> np.ndarray:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else batch for d in dims]
    return np.random.default_rng(batch).normal(size=shape).astype(np.float32)  # same in any test order


def node(op: str, inputs: list[str], outputs: list[str], **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def build(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray], x_shape: list[int | str],
          opset: int = 13, outputs: tuple[str, ...] = ("y",)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "case", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    _declare_output_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def _declare_output_shapes(model: onnx.ModelProto) -> None:
    """Give the outputs the shapes onnxruntime computes, with the batch as 'N' (a loader
    needs them; ONNX shape inference cannot follow a run-time Reshape target)."""
    x = x_for(model, batch=5)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for info, value in zip(model.graph.output, session.run(None, {"x": x})):
        dims = ["N" if i == 0 and d == 5 else d for i, d in enumerate(value.shape)]
        info.CopyFrom(helper.make_tensor_value_info(info.name, TensorProto.FLOAT, dims))


def load(model: onnx.ModelProto, tmp_path: Path) -> Graph:
    path = tmp_path / "case.onnx"
    onnx.save(model, str(path))
    return load_model(path)


def ops(graph: Graph) -> Counter[str]:
    return Counter(n.op + ("+clamp" if n.activation else "") for n in graph.nodes)


def assert_same(model: onnx.ModelProto, prepared: Graph, x: np.ndarray) -> None:
    """Prepared graph == onnxruntime on the original model: max|diff| <= 1e-5 * max|ref|."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    ref = dict(zip(names, session.run(None, {"x": x})))
    got = run_float(prepared, x)
    assert prepared.output_names() == names
    for name in names:
        assert got[name].shape == ref[name].shape, name
        err = np.abs(got[name].astype(np.float64) - ref[name]).max()
        assert err <= 1e-5 * max(np.abs(ref[name]).max(), 1e-6), f"{name}: max |diff| {err}"


CONV_W, CONV_B = w(4, 3, 3, 3), w(4)
BN = {"g": w(4) + 2, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}
BN_IN = ["g", "b", "m", "v"]
NCHW = ["N", 3, 6, 6]

CASES: dict[str, tuple[onnx.ModelProto, dict[str, int]]] = {
    "fold_constants": (build([
        node("Constant", [], ["c"], value=numpy_helper.from_array(w(6, 5))),
        node("Transpose", ["c"], ["ct"], perm=[1, 0]),
        node("Mul", ["ct", "two"], ["k"]),
        node("Add", ["x", "k"], ["y"])], {"two": f32(2.0)}, ["N", 5, 6]),
        {"Add": 1}),
    "fold_shape (static batch)": (build([
        node("Relu", ["x"], ["r"]),
        node("Shape", ["r"], ["s"]),
        node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(f32(1.0))),
        node("Add", ["r", "ones"], ["y"])], {}, [2, 3, 4]),
        {"Relu": 1, "Add": 1}),
    "Shape of a batch-dependent tensor stays": (build([
        node("Relu", ["x"], ["r"]),
        node("Shape", ["r"], ["s"]),
        node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(f32(1.0))),
        node("Add", ["r", "ones"], ["y"])], {}, ["N", 3, 4]),
        {"Relu": 1, "Shape": 1, "ConstantOfShape": 1, "Add": 1}),
    "eliminate_identity": (build([
        node("Identity", ["x"], ["i"]),
        node("Cast", ["i"], ["c"], to=TensorProto.FLOAT),
        node("Relu", ["c"], ["r"]),
        node("Dropout", ["r", "ratio"], ["d"]),
        node("Identity", ["d"], ["y"])], {"ratio": scalar(0.5)}, ["N", 7]),
        {"Relu": 1}),
    "flatten, squeeze, unsqueeze -> Reshape": (build([
        node("Flatten", ["x"], ["f"], axis=1),
        node("Relu", ["f"], ["r"]),
        node("Unsqueeze", ["r", "axes"], ["u"]),
        node("Tanh", ["u"], ["t"]),
        node("Squeeze", ["t", "axes"], ["y"])], {"axes": i64(2, 3)}, NCHW),
        {"Reshape": 3, "Relu": 1, "Tanh": 1}),
    "consecutive Reshapes merge, no-op Reshape removed": (build([
        node("Reshape", ["x", "s1"], ["a"]),
        node("Reshape", ["a", "s2"], ["b"]),
        node("Relu", ["b"], ["r"]),
        node("Reshape", ["r", "s3"], ["y"])], {"s1": i64(0, -1), "s2": i64(-1, 6, 18), "s3": i64(0, 6, 18)},
        NCHW),
        {"Reshape": 1, "Relu": 1}),
    "canonical_gemm (transB=0, alpha, beta, C row)": (build([
        node("Gemm", ["x", "B", "C"], ["y"], alpha=0.5, beta=2.0)], {"B": w(7, 4), "C": w(1, 4)}, ["N", 7]),
        {"Gemm": 1}),
    "MatMul + Add -> Gemm": (build([
        node("MatMul", ["x", "W"], ["m"]),
        node("Add", ["bias", "m"], ["y"])], {"W": w(7, 4), "bias": w(4)}, ["N", 7]),
        {"Gemm": 1}),
    "fold_batchnorm into Conv and Gemm": (build([
        node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", *BN_IN], ["n"], epsilon=1e-3),
        node("Flatten", ["n"], ["f"]),
        node("Gemm", ["f", "gw"], ["gm"], transB=1),
        node("BatchNormalization", ["gm", *BN_IN], ["y"])],
        {"cw": CONV_W, "cb": CONV_B, "gw": w(4, 144), **BN}, NCHW),
        {"Conv": 1, "Reshape": 1, "Gemm": 1}),
    "BatchNormalization without a foldable producer -> Mul + Add": (build([
        node("Conv", ["x", "cw"], ["c"]),
        node("BatchNormalization", ["c", *BN_IN], ["n"]),
        node("Add", ["c", "n"], ["y"])], {"cw": CONV_W, **BN}, NCHW),
        {"Conv": 1, "Mul": 1, "Add": 2}),
    "fold_bias_add (per channel)": (build([
        node("Conv", ["x", "cw"], ["c"]),
        node("Add", ["c", "k"], ["y"])], {"cw": CONV_W, "k": w(1, 4, 1, 1)}, NCHW),
        {"Conv": 1}),
    "Add along the width is not a bias": (build([
        node("Conv", ["x", "cw"], ["c"]),
        node("Add", ["c", "k"], ["y"])], {"cw": CONV_W, "k": w(4)}, NCHW),
        {"Conv": 1, "Add": 1}),
    "Sub -> Add, Div -> Mul, then merged": (build([
        node("Sub", ["x", "a"], ["s"]),
        node("Add", ["s", "b"], ["t"]),
        node("Relu", ["t"], ["r"]),
        node("Div", ["r", "d"], ["q"]),
        node("Mul", ["q", "e"], ["y"])], {"a": w(5), "b": w(1), "d": f32(3.0), "e": w(5)}, ["N", 5]),
        {"Add+clamp": 1, "Mul": 1}),
    "Mul by 1 and Add of 0 removed": (build([
        node("Mul", ["x", "one"], ["m"]),
        node("Tanh", ["m"], ["t"]),
        node("Add", ["zero", "t"], ["y"])], {"one": np.ones((3, 1, 1), np.float32), "zero": f32(0.0)}, NCHW),
        {"Tanh": 1}),
    "Mul by ones that broadcasts stays": (build([
        node("Mul", ["x", "one"], ["y"])], {"one": np.ones((2, 5), np.float32)}, ["N", 1, 5]),
        {"Mul": 1}),
    "fold_pad into Conv and counting AveragePool": (build([
        node("Pad", ["x", "p1"], ["a"]),
        node("Conv", ["a", "cw", "cb"], ["c"], pads=[1, 0, 1, 0]),
        node("Pad", ["c", "p2", "zero"], ["b"], mode="constant"),
        node("AveragePool", ["b"], ["y"], kernel_shape=[3, 3], count_include_pad=1)],
        {"p1": i64(0, 0, 0, 1, 0, 0, 2, 1), "p2": i64(0, 0, 1, 1, 0, 0, 1, 1), "zero": scalar(0.0),
         "cw": CONV_W, "cb": CONV_B}, NCHW),
        {"Conv": 1, "AveragePool": 1}),
    "Pad before a non-counting AveragePool or with a nonzero value stays": (build([
        node("Pad", ["x", "p"], ["a"]),
        node("AveragePool", ["a"], ["b"], kernel_shape=[2, 2]),
        node("Pad", ["b", "p", "one"], ["c"]),
        node("Conv", ["c", "cw"], ["y"])], {"p": i64(0, 0, 1, 1, 0, 0, 1, 1), "one": scalar(1.0), "cw": CONV_W},
        NCHW),
        {"Pad": 2, "AveragePool": 1, "Conv": 1}),
    "Pad with axes (opset 18) into Conv": (build([
        node("Pad", ["x", "p", "", "axes"], ["a"]),
        node("Conv", ["a", "cw"], ["y"])], {"p": i64(2, 1, 0, 3), "axes": i64(-1, 2), "cw": CONV_W},
        NCHW, opset=18),
        {"Conv": 1}),
    "ReduceMean over H, W -> GlobalAveragePool": (build([
        node("ReduceMean", ["x"], ["k"], axes=[2, 3]),
        node("ReduceMean", ["x"], ["d"], axes=[-1, -2], keepdims=0),
        node("Relu", ["d"], ["y"])], {}, NCHW, outputs=("k", "y")),
        {"GlobalAveragePool": 2, "Reshape": 1, "Relu": 1}),
    "ReduceMean with axes input (opset 18) -> GlobalAveragePool": (build([
        node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)], {"axes": i64(2, 3)}, NCHW, opset=18),
        {"GlobalAveragePool": 1}),
    "ReduceMean over channels stays": (build([
        node("ReduceMean", ["x"], ["y"], axes=[1])], {}, NCHW),
        {"ReduceMean": 1}),
    "fuse_activation": (build([
        node("Conv", ["x", "cw", "cb"], ["c"]),
        node("Relu", ["c"], ["r"]),
        node("Clip", ["r", "lo", "hi"], ["k"]),
        node("GlobalAveragePool", ["k"], ["g"]),
        node("Clip", ["g", "", "hi"], ["y"])], {"cw": CONV_W, "cb": CONV_B, "lo": scalar(-1.0), "hi": scalar(0.5)},
        NCHW),
        {"Conv+clamp": 1, "GlobalAveragePool+clamp": 1}),
    "no fusion when the unclamped value is used elsewhere": (build([
        node("Conv", ["x", "cw", "cb"], ["c"]),
        node("Relu", ["c"], ["r"]),
        node("Add", ["c", "r"], ["y"])], {"cw": CONV_W, "cb": CONV_B}, NCHW),
        {"Conv": 1, "Relu": 1, "Add": 1}),
    "clamp after MaxPool moves into the Conv": (build([
        node("Conv", ["x", "cw", "cb"], ["c"]),
        node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], pads=[1, 1, 1, 1]),
        node("Clip", ["m", "lo", "hi"], ["y"])], {"cw": CONV_W, "cb": CONV_B, "lo": scalar(0.0), "hi": scalar(6.0)},
        NCHW, opset=11),
        {"Conv+clamp": 1, "MaxPool": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pass(case: str, tmp_path: Path) -> None:
    model, expected = CASES[case]
    prepared = prepare(load(model, tmp_path))
    assert ops(prepared) == Counter(expected)
    assert_same(model, prepared, x_for(model))


def dynamic_flatten() -> onnx.ModelProto:
    """What torch's legacy exporter writes for `x.view(x.size(0), -1)` with a dynamic batch."""
    return build([
        node("Relu", ["x"], ["r"]),
        node("Shape", ["r"], ["s"]),
        node("Gather", ["s", "zero"], ["n"], axis=0),
        node("Unsqueeze", ["n", "axis0"], ["n1"]),
        node("Concat", ["n1", "minus1"], ["target"], axis=0),
        node("Reshape", ["r", "target"], ["y"])],
        {"zero": np.array(0, np.int64), "axis0": i64(0), "minus1": i64(-1)}, NCHW)


def test_dynamic_batch_flatten_becomes_a_constant_reshape(tmp_path: Path) -> None:
    model = dynamic_flatten()
    graph = load(model, tmp_path)
    resolved = run_flow(graph, [[canonical_reshape]])
    assert ops(resolved) == Counter({"Relu": 1, "Reshape": 1})
    reshape = resolved.nodes[-1]
    np.testing.assert_array_equal(resolved.constants[reshape.inputs[1]], [-1, 3 * 6 * 6])
    for batch in (1, 4, 9):  # the constant target is right at every batch size
        assert_same(model, resolved, x_for(model, batch))


def test_passes_leave_their_input_alone(tmp_path: Path) -> None:
    graph = load(dynamic_flatten(), tmp_path)
    before = ops(graph)
    run_flow(graph, [[fold_shape, canonical_reshape]])
    assert ops(graph) == before
