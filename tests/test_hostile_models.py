"""Hostile and malformed float models given to `intforge quantize`, run as a user runs it.

Every case must end with exit code 2, exactly one stderr line `intforge: error: ...` naming
the model file and the problem, no traceback, and no output file (not even a temporary one).
The models are built here with onnx.helper, each one a small edit of a valid model
(`_model()` with its defaults, which `test_the_base_model_quantizes_whatever_its_batch`
quantizes), so that each case tests one defect only. `intforge eval`, which runs a float
model as it is, is tried on the cases no runtime can run.

Sizes in the "huge" cases are terabytes on purpose: should a guard fail, numpy and
onnxruntime fail to allocate (an error, not a machine brought down by swapping).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from cliutil import assert_user_error, intforge
from quant import intfile, ir
from quant.qtypes import IntType, QParams

RNG = np.random.default_rng(2024)
TB = 1 << 40
"""A dimension no machine can allocate a float tensor of (4 TiB)."""

W_CONV = RNG.standard_normal((4, 1, 3, 3)).astype(np.float32)
W_FC = RNG.standard_normal((10, 64)).astype(np.float32)


# ---- building models ---------------------------------------------------------------
def _x(shape=("N", 1, 8, 8), elem=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", elem, list(shape))


def _y(shape=("N", 10)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))


def _base_nodes(pool: dict | None = None) -> list[onnx.NodeProto]:
    """x (N,1,8,8) -> Conv 3x3 pad 1 -> Relu -> MaxPool 2 -> Flatten -> Gemm -> y (N,10)."""
    return [helper.make_node("Conv", ["x", "wc", "bc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("MaxPool", ["r"], ["p"], name="pool",
                             **(pool or {"kernel_shape": [2, 2], "strides": [2, 2]})),
            helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
            helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]


def _base_inits(wc: np.ndarray = W_CONV) -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(wc, "wc"), numpy_helper.from_array(np.zeros(4, np.float32), "bc"),
            numpy_helper.from_array(W_FC, "wf"), numpy_helper.from_array(np.zeros(10, np.float32), "bf")]


def _model(nodes=None, inits=None, inputs=None, outputs=None, opset: int = 17,
           ir_version: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(_base_nodes() if nodes is None else nodes, "hostile",
                              [_x()] if inputs is None else inputs,
                              [_y()] if outputs is None else outputs,
                              _base_inits() if inits is None else inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def _save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


Maker = Callable[[Path], Path]
"""Writes a hostile model file into the given folder and returns its path."""


def _saved(build: Callable[[], onnx.ModelProto]) -> Maker:
    return lambda folder: _save(build(), folder)


def _bytes(data: bytes, name: str = "model.onnx") -> Maker:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name
    return make


# ---- unreadable files ----------------------------------------------------------------
def _truncated(folder: Path) -> Path:
    data = _model().SerializeToString()
    return _bytes(data[:len(data) // 2])(folder)


def _npz_as_model(folder: Path) -> Path:
    path = folder / "model.onnx"
    with open(path, "wb") as f:
        np.savez(f, x=np.zeros(3))
    return path


def _directory(folder: Path) -> Path:
    (folder / "model.onnx").mkdir()
    return folder / "model.onnx"


def _tensor_proto(folder: Path) -> Path:
    """A valid ONNX protobuf, but a TensorProto, not a model."""
    return _bytes(numpy_helper.from_array(W_FC, "w").SerializeToString())(folder)


def _integer_model(folder: Path) -> Path:
    """An intforge integer model is not a float model to quantize again."""
    spec = ir.TensorSpec((4,), QParams(0.5, 0, IntType(8, True)))
    graph = ir.IntGraph([ir.Clamp(name="c", inputs=["x"], outputs=["y"], low=0, high=127)],
                        {"x": spec, "y": spec}, "x", ["y"])
    intfile.save(graph, folder / "model.onnx")
    return folder / "model.onnx"


# ---- sizes ---------------------------------------------------------------------------
def _huge_initializer() -> onnx.ModelProto:
    """Initializer 'wf' declares [2^20, 2^20] floats (4 TiB) and carries no data."""
    inits = _base_inits()
    inits[2] = TensorProto(name="wf", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    return _model(inits=inits)


def _huge_external(folder: Path) -> Path:
    """Initializer 'wf' declares [2^20, 2^20] floats stored in a small external file."""
    (folder / "wf.bin").write_bytes(W_FC.tobytes())
    model = _model()
    wf = model.graph.initializer[2]
    set_external_data(wf, "wf.bin")
    wf.ClearField("raw_data")
    wf.data_location = TensorProto.EXTERNAL
    wf.ClearField("dims")
    wf.dims.extend([1 << 20, 1 << 20])
    return _save(model, folder)


def _negative_dims() -> onnx.ModelProto:
    inits = _base_inits()
    inits[1] = TensorProto(name="bc", data_type=TensorProto.FLOAT, dims=[-4])
    return _model(inits=inits)


def _huge_input_sample() -> onnx.ModelProto:
    """A free batch and 2^40 floats per sample: probing shapes on zeros would need 4 TiB."""
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [],
                  [_x(("N", 1 << 20, 1 << 20))], [_y(("N", 1 << 20, 1 << 20))])


def _huge_static_batch() -> onnx.ModelProto:
    """A static batch of 2^40 samples."""
    return _model(inputs=[_x((TB, 1, 8, 8))], outputs=[_y((TB, 10))])


def _static_batch_reshape() -> onnx.ModelProto:
    """A static batch of 1 and a Flatten written as Reshape to [1, 64]: it cannot run on other
    batch sizes, which calibration needs."""
    nodes = _base_nodes()
    nodes[3] = helper.make_node("Reshape", ["p", "flat"], ["f"], name="flatten")
    flat = numpy_helper.from_array(np.array([1, 64], np.int64), "flat")
    return _model(nodes, _base_inits() + [flat], [_x((1, 1, 8, 8))], [_y((1, 10))])


def _huge_pad() -> onnx.ModelProto:
    """A Pad whose constant pads make a 4 TiB tensor out of a small input."""
    pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 0, TB], np.int64), "pads")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")]
    return _model(nodes, [pads], outputs=[_y(("N", 1, 8, TB + 8))])


def _huge_constant_of_shape() -> onnx.ModelProto:
    """ConstantOfShape [2^20, 2^20] (foldable, so constant folding would run it) added to x."""
    shape = numpy_helper.from_array(np.array([1, 1 << 20, 1 << 20], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="big"),
             helper.make_node("Flatten", ["x"], ["f"], name="flatten"),
             helper.make_node("Add", ["f", "big"], ["y"], name="add")]
    return _model(nodes, [shape], [_x(("N", 1, 1 << 20))], [_y(("N", 1 << 20, 1 << 20))])


def _initializer(tensor: TensorProto) -> Callable[[], onnx.ModelProto]:
    """The base model with the bias 'bc' replaced by `tensor`."""
    return lambda: _model(inits=[tensor if i.name == "bc" else i for i in _base_inits()])


def _duplicate_initializer() -> onnx.ModelProto:
    return _model(inits=_base_inits() + [numpy_helper.from_array(np.ones(4, np.float32), "bc")])


def _sparse_initializer() -> onnx.ModelProto:
    model = _model()
    values = numpy_helper.from_array(np.ones(2, np.float32), "sparse")
    indices = numpy_helper.from_array(np.array([0, 3], np.int64), "sparse_indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    return model


# ---- external data -------------------------------------------------------------------
def _external(location: str, setup: Callable[[Path], None] = lambda folder: None,
              **entries: str) -> Maker:
    """The base model with 'wf' moved to external data at `location` (with more `entries`,
    e.g. offset), after `setup(folder)`."""
    def make(folder: Path) -> Path:
        setup(folder)
        model = _model()
        wf = model.graph.initializer[2]
        set_external_data(wf, location)
        for key, value in entries.items():
            entry = wf.external_data.add()
            entry.key, entry.value = key, value
        wf.ClearField("raw_data")
        wf.data_location = TensorProto.EXTERNAL
        return _save(model, folder)
    return make


def _secret_outside(folder: Path) -> None:
    """A file of the right size outside the model's folder (the `tmp_path` of the test)."""
    (folder.parent / "secret.bin").write_bytes(W_FC.tobytes())


def _symlink_outside(folder: Path) -> None:
    _secret_outside(folder)
    os.symlink(folder.parent / "secret.bin", folder / "wf.bin")


def _folder_symlink_outside(folder: Path) -> None:
    _secret_outside(folder)
    os.symlink(folder.parent, folder / "sub")


def _symlink_loop(folder: Path) -> None:
    os.symlink("wf.bin", folder / "wf.bin")


def _external_file(folder: Path) -> None:
    (folder / "wf.bin").write_bytes(W_FC.tobytes())


def _short_external_file(folder: Path) -> None:
    (folder / "wf.bin").write_bytes(W_FC.tobytes()[:100])


# ---- graph structure -----------------------------------------------------------------
def _cycle() -> onnx.ModelProto:
    nodes = _base_nodes()
    nodes[0] = helper.make_node("Conv", ["x", "wc", "bc"], ["c0"], name="conv", pads=[1, 1, 1, 1])
    nodes.insert(1, helper.make_node("Add", ["c0", "r"], ["c"], name="loop"))
    return _model(nodes)


def _duplicate_node_names() -> onnx.ModelProto:
    nodes = _base_nodes()
    nodes[1].name = "conv"
    return _model(nodes)


def _duplicate_producers() -> onnx.ModelProto:
    nodes = _base_nodes()
    nodes.insert(2, helper.make_node("Neg", ["c"], ["r"], name="second_r"))
    return _model(nodes)


def _input_also_produced() -> onnx.ModelProto:
    return _model(_base_nodes() + [helper.make_node("Relu", ["y"], ["x"], name="writes_x")])


def _dangling_input() -> onnx.ModelProto:
    nodes = _base_nodes()
    nodes[1] = helper.make_node("Relu", ["nowhere"], ["r"], name="relu")
    return _model(nodes)


def _output_not_produced() -> onnx.ModelProto:
    return _model(outputs=[_y(), helper.make_tensor_value_info("ghost", TensorProto.FLOAT, ["N", 1])])


def _no_input() -> onnx.ModelProto:
    c = numpy_helper.from_array(np.ones((1, 10), np.float32), "c")
    return _model([helper.make_node("Relu", ["c"], ["y"], name="relu")], [c], [], [_y((1, 10))])


# ---- shapes and types ----------------------------------------------------------------
def _input_without_shape() -> onnx.ModelProto:
    model = _model()
    model.graph.input[0].type.tensor_type.ClearField("shape")
    return model


def _scalar_input() -> onnx.ModelProto:
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [], [_x(())], [_y(())])


def _negative_input_dim() -> onnx.ModelProto:
    return _model(inputs=[_x(("N", 1, -8, 8))])


def _inconsistent_weights() -> onnx.ModelProto:
    """The Gemm weight has 63 columns for 64 features (onnxruntime fails at run time)."""
    inits = _base_inits()
    inits[2] = numpy_helper.from_array(W_FC[:, :63].copy(), "wf")
    return _model(inits=inits)


def _conv_channel_mismatch() -> onnx.ModelProto:
    return _model(inits=_base_inits(np.ones((4, 3, 3, 3), np.float32)))


def _bad_reshape() -> onnx.ModelProto:
    shape = numpy_helper.from_array(np.array([-1, 7, 7], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    return _model(nodes, [shape], outputs=[_y(("N", 7, 7))])


# ---- operators and attributes --------------------------------------------------------
def _with_node(node: onnx.NodeProto, inits=(), domain: tuple[str, int] | None = None
               ) -> Callable[[], onnx.ModelProto]:
    """The base model with `node` (reading 'y0', writing 'y') after the Gemm."""
    def build() -> onnx.ModelProto:
        nodes = _base_nodes()
        nodes[-1].output[0] = "y0"
        model = _model(nodes + [node], _base_inits() + list(inits))
        if domain:
            model.opset_import.append(helper.make_opsetid(*domain))
        return model
    return build


def _pool(**attrs) -> Callable[[], onnx.ModelProto]:
    return lambda: _model(_base_nodes({"kernel_shape": [2, 2], "strides": [2, 2], **attrs}))


def _average_pool(**attrs) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        nodes = _base_nodes()
        nodes[2] = helper.make_node("AveragePool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                                    strides=[2, 2], **attrs)
        return _model(nodes, opset=19)
    return build


def _in_front(node: onnx.NodeProto, inits=()) -> Callable[[], onnx.ModelProto]:
    """`node` reading 'x0' (the input) and writing 'x' for the base model."""
    def build() -> onnx.ModelProto:
        model = _model(inits=_base_inits() + list(inits), inputs=[helper.make_tensor_value_info(
            "x0", TensorProto.FLOAT, ["N", 1, 8, 8])])
        model.graph.node.insert(0, node)
        return model
    return build


def _integer_input() -> onnx.ModelProto:
    model = _in_front(helper.make_node("Cast", ["x0"], ["x"], name="cast", to=TensorProto.FLOAT))()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    return model


def _double_input() -> onnx.ModelProto:
    model = _integer_input()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


def _with_weight(value: float) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        wc = W_CONV.copy()
        wc[2, 0, 1, 1] = value
        return _model(inits=_base_inits(wc))
    return build


def _nan_constant_node() -> onnx.ModelProto:
    nodes = _base_nodes()
    nodes.insert(0, helper.make_node("Constant", [], ["bc"], name="bias",
                                     value=numpy_helper.from_array(np.array([0, np.nan, 0, 0], np.float32))))
    return _model(nodes, [i for i in _base_inits() if i.name != "bc"])


def _nested_subgraphs() -> onnx.ModelProto:
    """An If whose branch holds another If, three levels deep (If is not supported)."""
    branch = helper.make_graph([helper.make_node("Identity", ["y0"], ["z"])], "leaf", [],
                               [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    for level in range(3):
        node = helper.make_node("If", ["always"], ["z"], then_branch=branch, else_branch=branch)
        branch = helper.make_graph([node], f"level{level}", [],
                                   [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    return _with_node(helper.make_node("If", ["always"], ["y"], name="if", then_branch=branch,
                                       else_branch=branch),
                      [numpy_helper.from_array(np.array(True), "always")])()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
        return out + bytes([n])
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _deeply_nested(folder: Path) -> Path:
    """Subgraphs nested 500 deep, written field by field (onnx.helper refuses to build it):
    GraphProto.node = 1, NodeProto.op_type = 4, .attribute = 5, AttributeProto.name = 1,
    .g = 6, .type = 20 (GRAPH = 5), ModelProto.graph = 7."""
    graph = b""
    for _ in range(500):
        attribute = _field(1, b"then_branch") + _field(6, graph) + bytes([0xA0, 0x01, 5])
        graph = _field(1, _field(4, b"If") + _field(5, attribute))
    return _bytes(_model().SerializeToString() + _field(7, graph))(folder)


def _opset(version: int) -> Callable[[], onnx.ModelProto]:
    return lambda: _model(opset=version, ir_version=min(8, max(3, version - 4)))


def _no_default_opset() -> onnx.ModelProto:
    model = _model()
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return model


CASES = [  # (id, maker, words the error line must contain besides the file name)
    # unreadable files
    ("empty-file", _bytes(b""), ["empty"]),
    ("truncated", _truncated, ["truncated"]),
    ("text", _bytes(b"just some text, not a model\n"), ["not an ONNX model"]),
    ("json", _bytes(b'{"graph": {"node": []}}'), ["not an ONNX model"]),
    ("random-bytes", _bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes()), ["not an ONNX model"]),
    ("npz-file", _npz_as_model, ["not an ONNX model"]),
    ("onnx-tensor-not-model", _tensor_proto, ["not an ONNX model"]),
    ("directory", _directory, ["not a file"]),
    ("missing", lambda folder: folder / "model.onnx", ["no such"]),
    ("integer-model", _integer_model, ["integer model"]),
    # sizes
    ("initializer-undefined-type", _saved(_initializer(TensorProto(name="bc", dims=[4], data_type=0))),
     ["'bc'", "data type"]),
    ("initializer-short-data", _saved(_initializer(TensorProto(name="bc", dims=[4], raw_data=b"\0" * 6,
                                                               data_type=TensorProto.FLOAT))), ["'bc'"]),
    ("initializer-too-much-data", _saved(_initializer(TensorProto(name="bc", dims=[4], float_data=[0.0] * 9,
                                                                  data_type=TensorProto.FLOAT))), ["'bc'"]),
    ("string-initializer", _saved(_initializer(helper.make_tensor("bc", TensorProto.STRING, [4],
                                                                  [b"a", b"b", b"c", b"d"]))), ["bc"]),
    ("duplicate-initializer", _saved(_duplicate_initializer), ["'bc'", "twice"]),
    ("sparse-initializer", _saved(_sparse_initializer), ["sparse"]),
    ("huge-initializer", _saved(_huge_initializer), ["'wf'", "[1048576, 1048576]", "refusing"]),
    ("huge-external-initializer", _huge_external, ["'wf'", "[1048576, 1048576]", "refusing"]),
    ("negative-dims", _saved(_negative_dims), ["'bc'", "negative"]),
    ("huge-input-sample", _saved(_huge_input_sample), ["'x'", "refusing"]),
    ("huge-static-batch", _saved(_huge_static_batch), ["batch of 1099511627776", "refusing"]),
    ("static-batch-hard-coded", _saved(_static_batch_reshape), ["'flatten'", "static batch of 1"]),
    ("huge-pad", _saved(_huge_pad), ["refusing"]),
    ("huge-constant-of-shape", _saved(_huge_constant_of_shape), ["refusing"]),
    # external data
    ("external-traversal", _external("../secret.bin", _secret_outside), ["outside the model's folder"]),
    ("external-absolute", _external("/etc/passwd"), ["not a relative path"]),
    ("external-windows-absolute", _external("C:\\secret.bin"), ["not a relative path"]),
    ("external-symlink-outside", _external("wf.bin", _symlink_outside), ["outside the model's folder"]),
    ("external-folder-symlink-outside", _external("sub/secret.bin", _folder_symlink_outside),
     ["outside the model's folder"]),
    ("external-missing-file", _external("wf.bin"), ["no such file"]),
    ("external-too-short", _external("wf.bin", _short_external_file), ["'wf'"]),
    ("external-empty-location", _external(""), ["not a relative path"]),
    ("external-symlink-loop", _external("wf.bin", _symlink_loop), ["'wf'", "wf.bin"]),
    ("external-negative-offset", _external("wf.bin", _external_file, offset="-5"), ["'wf'"]),
    ("external-offset-not-a-number", _external("wf.bin", _external_file, offset="abc"), ["'wf'"]),
    ("external-huge-length", _external("wf.bin", _external_file, length=str(TB)), ["'wf'", "refusing"]),
    ("external-offset-past-the-end", _external("wf.bin", _external_file, offset=str(TB)), ["'wf'"]),
    # structure
    ("cycle", _saved(_cycle), ["cycle"]),
    ("duplicate-node-names", _saved(_duplicate_node_names), ["node name also used"]),
    ("duplicate-producers", _saved(_duplicate_producers), ["tensor 'r' is defined twice"]),
    ("input-also-produced", _saved(_input_also_produced), ["tensor 'x' is defined twice"]),
    ("dangling-input", _saved(_dangling_input), ["'nowhere' is not produced"]),
    ("output-not-produced", _saved(_output_not_produced), ["'ghost' is not produced"]),
    ("empty-graph", _saved(lambda: _model([], [], outputs=[_x()])), ["empty graph"]),
    ("no-outputs", _saved(lambda: _model(outputs=[])), ["no outputs"]),
    ("no-input", _saved(_no_input), ["no graph output depends on a graph input"]),
    # shapes and types
    ("free-channel-dimension", _saved(lambda: _model(inputs=[_x(("N", "C", 8, 8))])), ["'x'", "free"]),
    ("free-spatial-dimensions", _saved(lambda: _model(inputs=[_x(("N", 1, "H", "W"))])), ["'x'", "free"]),
    ("input-without-shape", _saved(_input_without_shape), ["'x'", "shape"]),
    ("scalar-input", _saved(_scalar_input), ["'x'", "batch"]),
    ("negative-input-dimension", _saved(_negative_input_dim), ["'x'", "-8"]),
    ("integer-input", _saved(_integer_input), ["'x0'", "int32"]),
    ("input-of-unknown-type", _saved(lambda: _model(inputs=[_x(elem=999)])), ["'x'", "type 999"]),
    ("input-is-a-sequence", _saved(lambda: _model(inputs=[helper.make_tensor_sequence_value_info(
        "x", TensorProto.FLOAT, None)])), ["'x'", "no tensor type"]),
    ("double-input", _saved(_double_input), ["'x0'", "float64"]),
    ("gemm-weight-mismatch", _saved(_inconsistent_weights), ["fc"]),
    ("conv-channel-mismatch", _saved(_conv_channel_mismatch), ["conv"]),
    ("impossible-reshape", _saved(_bad_reshape), ["reshape"]),
    ("maxpool-zero-stride", _saved(_pool(strides=[0, 0])), ["pool"]),
    ("maxpool-without-kernel", _saved(lambda: _model(_base_nodes({"strides": [2, 2]}))), ["pool"]),
    ("conv-negative-pads", _saved(lambda: _model([helper.make_node("Conv", ["x", "wc", "bc"], ["c"], name="conv",
                                                                   pads=[-1, -1, 1, 1])] + _base_nodes()[1:])),
     ["conv"]),
    ("conv-group-zero", _saved(lambda: _model([helper.make_node("Conv", ["x", "wc", "bc"], ["c"], name="conv",
                                                                pads=[1, 1, 1, 1], group=0)] + _base_nodes()[1:])),
     ["conv"]),
    ("attribute-of-wrong-type", _saved(lambda: _model(_base_nodes({"kernel_shape": "2x2"}))), ["pool"]),
    ("empty-op-type", _saved(_with_node(helper.make_node("", ["y0"], ["y"], name="nameless"))), ["'nameless'"]),
    # values
    ("nan-weight", _saved(_with_weight(np.nan)), ["'wc'", "NaN"]),
    ("inf-weight", _saved(_with_weight(np.inf)), ["'wc'", "Inf"]),
    ("minus-inf-weight", _saved(_with_weight(-np.inf)), ["'wc'", "Inf"]),
    ("nan-constant-node", _saved(_nan_constant_node), ["'bc'", "NaN"]),
    # operators
    ("unsupported-op", _saved(_with_node(helper.make_node("Erf", ["y0"], ["y"], name="erf"))),
     ["'erf' (Erf)", "unsupported operator"]),
    ("unknown-op", _saved(_with_node(helper.make_node("Frobnicate", ["y0"], ["y"], name="frob"))),
     ["'frob' (Frobnicate)"]),
    ("custom-domain-op", _saved(_with_node(helper.make_node("Magic", ["y0"], ["y"], name="magic",
                                                            domain="com.example"), domain=("com.example", 1))),
     ["'magic' (Magic)", "com.example"]),
    ("shape-op-on-data", _saved(_with_node(helper.make_node("Abs", ["y0"], ["y"], name="abs"))),
     ["'abs' (Abs)", "only on constants"]),
    ("nested-subgraphs", _saved(_nested_subgraphs), ["'if' (If)"]),
    ("deeply-nested-subgraphs", _deeply_nested, ["not an ONNX model"]),
    # attributes
    ("maxpool-ceil-mode", _saved(_pool(ceil_mode=1)), ["'pool' (MaxPool)", "ceil_mode=1"]),
    ("maxpool-same-upper", _saved(_pool(auto_pad="SAME_UPPER")), ["'pool' (MaxPool)", "SAME_UPPER"]),
    ("maxpool-storage-order", _saved(_pool(storage_order=1)), ["'pool' (MaxPool)", "storage_order=1"]),
    ("avgpool-same-lower", _saved(_average_pool(auto_pad="SAME_LOWER")), ["'pool' (AveragePool)", "SAME_LOWER"]),
    ("avgpool-ceil-mode", _saved(_average_pool(ceil_mode=1)), ["'pool' (AveragePool)", "ceil_mode=1"]),
    ("avgpool-dilations", _saved(_average_pool(dilations=[2, 2], pads=[0, 0, 1, 1])), ["'pool' (AveragePool)", "dilations"]),
    ("argmax-last-index", _saved(_with_node(helper.make_node("ArgMax", ["y0"], ["y"], name="argmax", axis=1,
                                                             select_last_index=1))),
     ["'argmax' (ArgMax)", "select_last_index=1"]),
    ("softmax-on-batch", _saved(_with_node(helper.make_node("Softmax", ["y0"], ["y"], name="sm", axis=0))),
     ["'sm' (Softmax)", "batch axis"]),
    ("concat-on-batch", _saved(_with_node(helper.make_node("Concat", ["y0", "y0"], ["y"], name="cat", axis=0))),
     ["'y' does not keep the batch"]),
    ("transpose-batch", _saved(_with_node(helper.make_node("Transpose", ["y0"], ["y"], name="tr", perm=[1, 0]))),
     ["'y' does not keep the batch"]),
    ("pad-reflect", _saved(_with_node(helper.make_node("Pad", ["y0", "pads"], ["y"], name="pad", mode="reflect"),
                                      [numpy_helper.from_array(np.array([0, 1, 0, 1], np.int64), "pads")])),
     ["'pad' (Pad)", "reflect"]),
    ("slice-step-2", _saved(_with_node(helper.make_node("Slice", ["y0", "s", "e", "a", "st"], ["y"], name="sl"),
                                       [numpy_helper.from_array(np.array([v], np.int64), n)
                                        for n, v in (("s", 0), ("e", 10), ("a", 1), ("st", 2))])),
     ["'sl' (Slice)", "step"]),
    ("batchnorm-training", _saved(_with_node(
        helper.make_node("BatchNormalization", ["y0", "s", "b", "m", "v"], ["y"], name="bn", training_mode=1),
        [numpy_helper.from_array(np.ones(10, np.float32), n) for n in "sbmv"])),
     ["'bn' (BatchNormalization)", "training_mode=1"]),
    # opsets
    ("opset-7", _saved(_opset(7)), ["opset 7"]),
    ("opset-1", _saved(_opset(1)), ["opset 1"]),
    ("opset-from-the-future", _saved(_opset(99)), ["opset 99"]),
    ("no-default-opset", _saved(_no_default_opset), ["opset"]),
]


@pytest.fixture(scope="module")
def calib(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    np.savez(path, x=RNG.standard_normal((16, 1, 8, 8)).astype(np.float32))
    return path


def test_the_base_model_quantizes_whatever_its_batch(tmp_path, calib):
    """Every case is one defect away from this model, which must go through, also with a
    static batch (torch.onnx.export without dynamic axes; calibration runs 16 samples at
    once), and then give the same integer model as with a free batch."""
    written = []
    for batch in ("N", 1, 4):
        model = _save(_model(inputs=[_x((batch, 1, 8, 8))], outputs=[_y((batch, 10))]), tmp_path,
                      f"batch_{batch}.onnx")
        out = tmp_path / f"batch_{batch}.int.onnx"
        result = intforge("quantize", model, "--calib", calib, "-o", out)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        written.append(out.read_bytes())
    assert written[1] == written[0] and written[2] == written[0]


@pytest.mark.parametrize("make, words", [pytest.param(m, w, id=i) for i, m, w in CASES])
def test_hostile_model_is_refused_with_one_line(tmp_path, calib, make, words):
    folder = tmp_path / "models"
    folder.mkdir()
    model = make(folder)
    out = tmp_path / "out.onnx"
    result = intforge("quantize", model, "--calib", calib, "-o", out, cwd=tmp_path)
    assert_user_error(result, model.name, *words)
    assert not [p for p in tmp_path.iterdir() if "out.onnx" in p.name], "output or temporary file left"


EVAL_CASES = ("empty-file", "truncated", "text", "directory", "missing", "external-traversal",
              "external-absolute", "external-symlink-outside", "huge-initializer", "cycle",
              "initializer-short-data", "conv-channel-mismatch", "concat-on-batch",
              "transpose-batch", "opset-1", "integer-input")
"""`intforge eval` runs a float model as is in onnxruntime, so it accepts what only the
quantizer refuses (unsupported operators, NaN weights, ...); these it must refuse too."""


@pytest.mark.parametrize("make", [pytest.param({i: m for i, m, _ in CASES}[i], id=i) for i in EVAL_CASES])
def test_eval_refuses_what_onnxruntime_cannot_run(tmp_path, make):
    folder = tmp_path / "models"
    folder.mkdir()
    model = make(folder)
    data = tmp_path / "data.npz"
    np.savez(data, x=RNG.standard_normal((6, 1, 8, 8)).astype(np.float32), y=np.arange(6))
    result = intforge("eval", model, "--data", data, cwd=tmp_path)
    assert_user_error(result, model.name)
