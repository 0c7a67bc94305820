"""load_model: ONNX files (and external data) -> float Graph, refusing bad or hostile files."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant.errors import ModelError
from quant.onnx_import import load_model

RNG = np.random.default_rng(7)


def _save(tmp_path: Path, nodes, inputs, outputs, inits=(), opsets=(("", 17),), name="m.onnx") -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save_model(model, path)
    return path


def _fc_model(tmp_path: Path, w: np.ndarray, name="m.onnx") -> Path:
    """y = MatMul(x, w) with x (N, 3)."""
    return _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w.shape[1]])],
                 [numpy_helper.from_array(w, "w")], name=name)


def _raises(message: str):
    return pytest.raises(ModelError, match="^" + re.escape(message) + "$")


def _run(model: onnx.ModelProto | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feeds)


def _external(tmp_path: Path, location: str) -> Path:
    """A saved external-data model whose tensor 'w' is re-pointed to `location`."""
    path = _fc_model(tmp_path, RNG.random((3, 4), dtype=np.float32))
    model = onnx.load(path)
    onnx.save_model(model, path, save_as_external_data=True, location="w.data", size_threshold=0)
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save_model(model, path)
    return path


# ---- unreadable files ----------------------------------------------------------------
def test_missing_file(tmp_path):
    with _raises(f"{tmp_path / 'nope.onnx'}: no such model file"):
        load_model(tmp_path / "nope.onnx")


def test_truncated_file(tmp_path):
    path = _fc_model(tmp_path, RNG.random((3, 4), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-20])
    with _raises(f"{path}: not an ONNX model (unreadable or truncated protobuf)"):
        load_model(path)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("just some text, definitely not a protobuf\n")
    with _raises(f"{path}: not an ONNX model (unreadable or truncated protobuf)"):
        load_model(path)


def test_empty_graph(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    path = _save(tmp_path, [], [x], [x])
    with _raises(f"{path}: empty graph (no nodes); is this an ONNX model?"):
        load_model(path)


def test_no_outputs(tmp_path):
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [])
    with _raises(f"{path}: graph has no outputs"):
        load_model(path)


# ---- hostile or broken tensors -------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight(tmp_path, bad):
    w = RNG.random((3, 4), dtype=np.float32)
    w[1, 2] = bad
    path = _fc_model(tmp_path, w)
    with _raises(f"{path}: constant tensor 'w' contains NaN or Inf"):
        load_model(path)


def test_non_finite_constant_node(tmp_path):
    path = _save(tmp_path, [helper.make_node("Constant", [], ["c"], value_floats=[1.0, float("nan")]),
                            helper.make_node("Add", ["x", "c"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with _raises(f"{path}: constant tensor 'c' contains NaN or Inf"):
        load_model(path)


def test_absurd_declared_size_is_refused_before_allocation(tmp_path):
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    path = _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 20])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 20])], [huge])
    with _raises(f"{path}: tensors exceed 2 GiB (reached at tensor 'w', shape [1048576, 1048576]); "
                 "refusing to load"):
        load_model(path)


def test_absurd_external_length_is_refused(tmp_path):
    path = _external(tmp_path, "w.data")
    model = onnx.load(path, load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "length":
            entry.value = str(3 << 30)
    onnx.save_model(model, path)
    with _raises(f"{path}: tensors exceed 2 GiB (reached at tensor 'w', shape [3, 4]); refusing to load"):
        load_model(path)


def test_tensor_data_shorter_than_shape(tmp_path):
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 4], raw_data=b"\0" * 8)
    path = _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [short])
    with pytest.raises(ModelError, match=re.escape(f"{path}: tensor 'w' data does not match its shape [3, 4]")):
        load_model(path)


# ---- external data -------------------------------------------------------------------
def test_external_data_round_trip(tmp_path):
    w = RNG.random((3, 4), dtype=np.float32)
    path = _fc_model(tmp_path, w)
    onnx.save_model(onnx.load(path), path, save_as_external_data=True, location="w.data", size_threshold=0)
    assert (tmp_path / "w.data").stat().st_size == w.nbytes
    graph = load_model(path)
    np.testing.assert_array_equal(graph.constants["w"], w)
    x = RNG.random((5, 3), dtype=np.float32)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {"x": x})[0], _run(path, {"x": x})[0])


def test_external_data_in_subfolder_is_allowed(tmp_path):
    (tmp_path / "weights").mkdir()
    path = _external(tmp_path, "weights/../weights/w.data")
    (tmp_path / "w.data").rename(tmp_path / "weights" / "w.data")
    assert load_model(path).constants["w"].shape == (3, 4)


def test_external_data_path_traversal(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    path = _external(inner, "../w.data")
    (inner / "w.data").rename(tmp_path / "w.data")  # the file exists, but outside the folder
    with _raises(f"{path}: tensor 'w': external data location '../w.data' is outside the model's folder; "
                 "refusing to load"):
        load_model(path)


def test_external_data_absolute_path(tmp_path):
    target = str(tmp_path / "w.data")
    path = _external(tmp_path, target)
    with _raises(f"{path}: tensor 'w': external data location '{target}' is not a relative path; "
                 "refusing to load"):
        load_model(path)


def test_external_data_missing_file(tmp_path):
    path = _external(tmp_path, "gone.data")
    with _raises(f"{path}: tensor 'w': external data location 'gone.data': no such file"):
        load_model(path)


@pytest.mark.slow
def test_torch_dynamo_export_with_external_data(tmp_path):
    from zoo import nets  # imports torch: only this test pays for it

    data = nets.export_dynamo(nets.build("cnn_bn"), tmp_path / "cnn.onnx")
    assert data.is_file()
    graph = load_model(tmp_path / "cnn.onnx")
    x = RNG.random((3, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {"x": x})[0], _run(tmp_path / "cnn.onnx", {"x": x})[0])


# ---- conversion ----------------------------------------------------------------------
def test_conversion_of_nodes_constants_and_value_infos(tmp_path):
    value = numpy_helper.from_array(np.array([1.5], np.float32), "v")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),  # unnamed, index 0
        helper.make_node("Relu", ["r"], ["r2"], name="Relu_2"),  # collides with index 2's default
        helper.make_node("Relu", ["r2"], ["r3"]),  # unnamed, index 2 -> Relu_2_1
        helper.make_node("Constant", [], ["c_t"], value=numpy_helper.from_array(np.arange(2, dtype=np.int64))),
        helper.make_node("Constant", [], ["c_f"], value_float=2.5),
        helper.make_node("Constant", [], ["c_fs"], value_floats=[1.0, 2.0]),
        helper.make_node("Constant", [], ["c_i"], value_int=4),
        helper.make_node("Constant", [], ["c_is"], value_ints=[1, -1]),
        helper.make_node("ConstantOfShape", ["c_is"], ["z"], name="fill", value=value),
        helper.make_node("MaxPool", ["r3"], ["p"], name="pool", kernel_shape=[2, 2], auto_pad="VALID"),
        helper.make_node("Add", ["p", "b"], ["y"], name="add"),
        helper.make_node("ArrayFeatureExtractor", ["y", "c_t"], ["f"], name="afe", domain="ai.onnx.ml"),
        helper.make_node("Identity", ["y"], ["i"], name="id"),
    ]
    b = np.full((1, 1, 1, 1), 0.5, np.float32)
    path = _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4]),
                  helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 1, 1])],  # initializer too
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 2, 2]),
                  helper.make_tensor_value_info("f", TensorProto.FLOAT, ["batch", 1, 2, 2]),
                  helper.make_tensor_value_info("i", TensorProto.UNDEFINED, None)],  # type inferred
                 [numpy_helper.from_array(b, "b")], opsets=(("", 13), ("ai.onnx.ml", 3)))
    graph = load_model(path)

    assert [n.name for n in graph.nodes] == ["Relu_0", "Relu_2", "Relu_2_1", "fill", "pool", "add", "afe", "id"]
    assert [(n.op, n.inputs, n.outputs, n.domain) for n in graph.nodes][-2] == (
        "ArrayFeatureExtractor", ["y", "c_t"], ["f"], "ai.onnx.ml")
    assert graph.nodes[4].attrs == {"kernel_shape": [2, 2], "auto_pad": "VALID"}
    fill = graph.nodes[3].attrs["value"]
    assert isinstance(fill, np.ndarray) and fill.dtype == np.float32 and fill.tolist() == [1.5]

    expected = {"b": b, "c_t": np.arange(2, dtype=np.int64), "c_f": np.array(2.5, np.float32),
                "c_fs": np.array([1.0, 2.0], np.float32), "c_i": np.array(4, np.int64),
                "c_is": np.array([1, -1], np.int64)}
    assert list(graph.constants) == list(expected)
    for name, value in expected.items():
        assert graph.constants[name].dtype == value.dtype, name
        np.testing.assert_array_equal(graph.constants[name], value)

    assert [(v.name, v.shape, v.dtype) for v in graph.inputs] == [("x", (None, 1, 4, 4), np.float32)]
    assert [(v.name, v.shape, v.dtype) for v in graph.outputs] == [
        ("y", (None, 1, 2, 2), np.float32), ("f", (None, 1, 2, 2), np.float32), ("i", (None, 1, 2, 2), np.float32)]
    assert (graph.opset, graph.extra_opsets, graph.name) == (13, {"ai.onnx.ml": 3}, "g")


def test_loaded_graph_runs_like_the_file(tmp_path):
    """Constant nodes, initializer-inputs and attributes survive the trip through Graph.to_onnx()."""
    w = RNG.standard_normal((2, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["lo"], value_float=0.0),
             helper.make_node("Constant", [], ["hi"], value=numpy_helper.from_array(np.array(0.7, np.float32))),
             helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 1, 2], strides=[2, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    path = _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5]),
                  helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 1, 3, 3])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                 [numpy_helper.from_array(w, "w")])
    graph = load_model(path)
    assert [v.name for v in graph.inputs] == ["x"] and set(graph.constants) == {"w", "lo", "hi"}
    x = RNG.standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(_run(graph.to_onnx(), {"x": x})[0], _run(path, {"x": x})[0])


def test_initializer_and_constant_node_with_the_same_name(tmp_path):
    path = _save(tmp_path, [helper.make_node("Constant", [], ["w"], name="k", value_floats=[1.0]),
                            helper.make_node("Add", ["x", "w"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                 [numpy_helper.from_array(np.ones(1, np.float32), "w")])
    with _raises(f"{path}: tensor 'w' is defined twice (initializer and node 'k' (Constant))"):
        load_model(path)
