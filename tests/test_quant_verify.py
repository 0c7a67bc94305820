"""verify: structural and operator checks (all problems in one message) and input packing."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant.errors import ModelError
from quant.graph import Graph, Node, ValueInfo
from quant.onnx_import import load_model
from quant.verify import verify

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(3)
F32 = np.dtype(np.float32)


def _graph(nodes: list[Node], inputs=("x",), outputs=("y",), constants=None) -> Graph:
    return Graph(nodes=nodes, constants=dict(constants or {}),
                 inputs=[ValueInfo(name, (None, 4), F32) for name in inputs],
                 outputs=[ValueInfo(name, (None, 4), F32) for name in outputs])


def _raises(message: str):
    return pytest.raises(ModelError, match="^" + re.escape(message) + "$")


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _load(tmp_path: Path, model: onnx.ModelProto) -> Graph:
    onnx.save_model(model, tmp_path / "m.onnx")
    return load_model(tmp_path / "m.onnx")


# ---- structure -----------------------------------------------------------------------
def test_cycle_names_a_node_on_it():
    nodes = [Node("Add", "a", ["x", "t2"], ["t1"]), Node("Relu", "b", ["t1"], ["t2"]),
             Node("Relu", "c", ["t2"], ["y"])]
    with pytest.raises(ModelError) as info:
        verify(_graph(nodes))
    assert re.fullmatch(r"model: cycle through tensor '(t1|t2)' at node '(a|b)' \((Add|Relu)\)", str(info.value))


def test_structure_problems_are_all_reported():
    nodes = [Node("Relu", "r", ["x"], ["t"]), Node("Relu", "r", ["t"], ["u"]),  # duplicate node name
             Node("Neg", "n", ["x"], ["t"]),  # t produced twice
             Node("Relu", "shadow", ["u"], ["x"]),  # produces the graph input
             Node("Add", "add", ["u", "ghost"], ["y"])]
    graph = _graph(nodes, outputs=("y", "lost"), constants={"x": np.zeros(4, np.float32)})
    with _raises("model: node 'r' (Relu): node name also used by node 'r' (Relu); "
                 "tensor 'x' is defined twice: by graph input and by constant; "
                 "tensor 't' is defined twice: by node 'r' (Relu) and by node 'n' (Neg); "
                 "tensor 'x' is defined twice: by graph input and by node 'shadow' (Relu); "
                 "node 'add' (Add): input 'ghost' is not produced by any node, graph input or constant; "
                 "graph output 'lost' is not produced by any node, graph input or constant"):
        verify(graph)


def test_no_outputs():
    graph = _graph([Node("Relu", "r", ["x"], ["y"])], outputs=())
    with _raises("m.onnx: the graph has no outputs"):
        verify(graph, "m.onnx")


def test_optional_empty_inputs_are_not_missing():
    graph = _graph([Node("Clip", "clip", ["x", "", "hi"], ["y"])], constants={"hi": np.float32(1)})
    assert [n.inputs for n in verify(graph).nodes] == [["x", "", "hi"]]


# ---- operators and attributes --------------------------------------------------------
def test_unsupported_operators_are_listed_together():
    nodes = [Node("Erf", "erf1", ["x"], ["a"]), Node("Relu", "ok", ["a"], ["b"]),
             Node("Cos", "cos1", ["b"], ["c"]), Node("Foo", "custom", ["c"], ["d"], domain="com.example"),
             Node("ArrayFeatureExtractor", "afe", ["d", "i"], ["e"]),  # exists only in ai.onnx.ml
             Node("Sqrt", "sqrt", ["e"], ["y"])]  # shape-only operator applied to data
    graph = _graph(nodes, constants={"i": np.array([0], np.int64)})
    with _raises("model: node 'erf1' (Erf): unsupported operator; node 'cos1' (Cos): unsupported operator; "
                 "node 'custom' (Foo): unsupported operator in domain 'com.example'; "
                 "node 'afe' (ArrayFeatureExtractor): unsupported operator; "
                 "node 'sqrt' (Sqrt): supported only on constants and shapes, not on graph data"):
        verify(graph)


def test_unsupported_operator_in_dead_code_is_ignored():
    graph = _graph([Node("Relu", "r", ["x"], ["y"]), Node("Erf", "dead", ["x"], ["z"])])
    assert [n.name for n in verify(graph).nodes] == ["r"]


@pytest.mark.parametrize("op, attrs, message", [
    ("MaxPool", {"kernel_shape": [2, 2], "ceil_mode": 1}, "attribute ceil_mode=1 is not supported (only 0)"),
    ("MaxPool", {"kernel_shape": [2, 2], "storage_order": 1}, "attribute storage_order=1 is not supported (only 0)"),
    ("MaxPool", {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"},
     "attribute auto_pad='SAME_UPPER' is not supported (only 'NOTSET')"),
    ("AveragePool", {"kernel_shape": [2, 2], "ceil_mode": 1}, "attribute ceil_mode=1 is not supported (only 0)"),
    ("AveragePool", {"kernel_shape": [2, 2], "auto_pad": b"VALID"},
     "attribute auto_pad='VALID' is not supported (only 'NOTSET')"),
    ("ArgMax", {"select_last_index": 1}, "attribute select_last_index=1 is not supported (only 0)"),
    ("BatchNormalization", {"training_mode": 1}, "attribute training_mode=1 is not supported (only 0)"),
])
def test_unsupported_attributes(op, attrs, message):
    stats = {k: np.ones(4, np.float32) for k in "sbmv"}
    inputs = ["x", "s", "b", "m", "v"] if op == "BatchNormalization" else ["x"]
    graph = _graph([Node(op, "n1", inputs, ["y"], attrs)], constants=stats)
    with _raises(f"model: node 'n1' ({op}): {message}"):
        verify(graph)


def test_weights_and_shapes_must_be_constant():
    nodes = [Node("MatMul", "mm", ["x", "x2"], ["a"]), Node("Reshape", "rs", ["a", "shape"], ["y"])]
    graph = _graph(nodes, inputs=("x", "x2", "shape"))
    graph.inputs[2] = ValueInfo("shape", (2,), F32)
    with _raises("model: node 'mm' (MatMul): input 'x2' must be a constant, not computed from graph data; "
                 "node 'rs' (Reshape): input 'shape' must be a constant, not computed from graph data"):
        verify(graph)


def test_torch_style_shape_chain_is_accepted_and_runs(tmp_path):
    """Flatten written as torch does: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])),
    plus Range/Neg (only allowed on constants) computing the Slice bounds."""
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("Range", ["one", "two", "one"], ["start"]),  # [1]
             helper.make_node("Neg", ["minus4"], ["end"]),  # [4]
             helper.make_node("Slice", ["flat", "start", "end", "axes1"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"), one,
             numpy_helper.from_array(np.array(2, np.int64), "two"),
             numpy_helper.from_array(np.array([-4], np.int64), "minus4"),
             numpy_helper.from_array(np.array([1], np.int64), "axes1"),
             numpy_helper.from_array(np.ones(2, np.int64), "unused")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None])], inits)
    graph = verify(_load(tmp_path, model))
    assert "unused" not in graph.constants and len(graph.nodes) == 8
    x = RNG.standard_normal((2, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {"x": x})[0], x.reshape(2, 6)[:, 1:4])


@pytest.mark.parametrize("auto_pad, in_hw", [("SAME_UPPER", (7, 6)), ("SAME_LOWER", (7, 6)),
                                             ("VALID", (7, 6)), ("SAME_UPPER", (8, 5))])
def test_conv_auto_pad_becomes_explicit_pads(tmp_path, auto_pad, in_hw):
    w = RNG.standard_normal((3, 2, 3, 2)).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad=auto_pad, strides=[2, 1])
    model = _model([conv], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, *in_hw])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [numpy_helper.from_array(w, "w")])
    graph = verify(_load(tmp_path, model))
    assert "auto_pad" not in graph.nodes[0].attrs and len(graph.nodes[0].attrs["pads"]) == 4
    x = RNG.standard_normal((2, 2, *in_hw)).astype(np.float32)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {"x": x})[0], _run(model, {"x": x})[0])


@pytest.mark.parametrize("auto_pad, pads", [("SAME_UPPER", [2, 1, 2, 2]), ("SAME_LOWER", [2, 2, 2, 1])])
def test_conv_same_pads_with_dilation(auto_pad, pads):
    """onnxruntime refuses dilated SAME convs, so these pads are worked by hand from the ONNX formula:
    H: in 7, k 3, d 2, s 2 -> out 4, total (4-1)*2 + 5 - 7 = 4; W: in 6, k 2, d 3, s 1 -> total 3."""
    conv = Node("Conv", "conv", ["x", "w"], ["y"], {"auto_pad": auto_pad, "strides": [2, 1], "dilations": [2, 3]})
    graph = _graph([conv], constants={"w": np.ones((3, 4, 3, 2), np.float32)})
    graph.inputs[0].shape = (None, 4, 7, 6)
    assert verify(graph).nodes[0].attrs == {"pads": pads, "strides": [2, 1], "dilations": [2, 3]}


def test_conv_same_pad_with_unknown_spatial_shape():
    graph = _graph([Node("Conv", "conv", ["x", "w"], ["y"], {"auto_pad": "SAME_UPPER"})],
                   constants={"w": np.ones((4, 4, 3, 3), np.float32)})
    graph.inputs[0].shape = (None, 4, None, None)
    with _raises("model: node 'conv' (Conv): attribute auto_pad='SAME_UPPER' is not supported (only 'NOTSET')"):
        verify(graph)


# ---- inputs --------------------------------------------------------------------------
def test_multiple_inputs_are_packed_into_one(tmp_path):
    """Inputs 'x' (N,3) and 'b' (N,2,2) become one (N,7) input; 'unused' is dropped."""
    nodes = [helper.make_node("Flatten", ["b"], ["bf"]),
             helper.make_node("Concat", ["x", "bf"], ["cat"], axis=1),
             helper.make_node("MatMul", ["cat", "w"], ["mm"]),
             helper.make_node("Mul", ["mm", "x"], ["y"]),
             helper.make_node("Relu", ["unused"], ["dead"])]
    w = RNG.standard_normal((7, 3)).astype(np.float32)
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                           helper.make_tensor_value_info("unused", TensorProto.FLOAT, ["N", 5]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2, 2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                   [numpy_helper.from_array(w, "w")])
    graph = verify(_load(tmp_path, model))
    (packed,) = graph.inputs
    assert (packed.shape, packed.dtype) == ((None, 7), F32)
    assert packed.name not in {"x", "b", "unused"}
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    b = RNG.standard_normal((4, 2, 2)).astype(np.float32)
    expected = _run(model, {"x": x, "b": b, "unused": np.zeros((4, 5), np.float32)})[0]
    packed_x = np.concatenate([x, b.reshape(4, 4)], axis=1)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {packed.name: packed_x})[0], expected)


def test_packed_input_is_named_x_and_keeps_a_static_batch():
    nodes = [Node("Add", "add", ["a", "b"], ["y"])]
    graph = _graph(nodes, inputs=("a", "b"))
    for v in graph.inputs:
        v.shape = (2, 4)
    verified = verify(graph)
    assert [(v.name, v.shape) for v in verified.inputs] == [("x", (2, 8))]
    assert [(v.name, v.shape) for v in graph.inputs] == [("a", (2, 4)), ("b", (2, 4))]  # input untouched


def test_input_problems():
    nodes = [Node("Cast", "cast", ["ids"], ["f"], {"to": 1}), Node("Add", "add", ["f", "v"], ["y"])]
    graph = _graph(nodes, inputs=("ids", "v"))
    graph.inputs = [ValueInfo("ids", (None, 4), np.dtype(np.int64)), ValueInfo("v", (None, None), F32)]
    with _raises("model: graph input 'ids': dtype int64 is not supported (only float32); "
                 "graph input 'v': shape (N, N) cannot be packed with the other inputs "
                 "(needs a batch dimension and static other dimensions)"):
        verify(graph)


def test_output_independent_of_inputs():
    graph = _graph([Node("Relu", "r", ["c"], ["y"])], constants={"c": np.ones(4, np.float32)})
    with _raises("model: no graph output depends on a graph input"):
        verify(graph)


def test_unused_nodes_constants_and_inputs_are_removed():
    nodes = [Node("Add", "add", ["x", "bias"], ["y"]), Node("Mul", "dead", ["x", "scale"], ["z"]),
             Node("Relu", "dead2", ["other"], ["z2"])]
    graph = _graph(nodes, inputs=("x", "other"),
                   constants={"bias": np.ones(4, np.float32), "scale": np.ones(4, np.float32),
                              "orphan": np.zeros(1, np.float32)})
    verified = verify(graph)
    assert [n.name for n in verified.nodes] == ["add"]
    assert list(verified.constants) == ["bias"]
    assert [v.name for v in verified.inputs] == ["x"]


# ---- real models ---------------------------------------------------------------------
def _zoo_files() -> list[Path]:
    return sorted((REPO / "tests" / "models").glob("*.onnx")) + sorted((REPO / "models").glob("*.onnx"))


@pytest.mark.parametrize("path", _zoo_files(), ids=lambda p: p.name)
def test_zoo_models_load_and_verify(path):
    """The zoo covers the legacy exporter's Pad shape chain, Constant-node Clips and skl2onnx's ai.onnx.ml."""
    original = onnx.load(path)
    graph = verify(load_model(path), str(path))
    assert len(graph.inputs) == 1 and len(original.graph.input) - len(original.graph.initializer) <= 1
    x = RNG.random([5 if d is None else d for d in graph.input.shape], dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for got, want in zip(_run(graph.to_onnx(), {graph.input.name: x}), session.run(None, {graph.input.name: x})):
        np.testing.assert_array_equal(got, want)
