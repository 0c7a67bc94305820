"""The integer model file: exact round trips of every IR class, byte-identical rewrites, a file
onnx.checker accepts and people can read, and clear errors for files that are not ours."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from quant import intfile, ir
from quant.errors import ModelError
from quant.qtypes import IntType, QParams

I64 = np.int64


def _requant(channels: int, zero_point: int = 0) -> ir.Requant:
    return ir.Requant(multiplier=np.array([16384, 30001, 20000][:channels], I64),
                      shift=np.array([9, 12, 40][:channels], I64),
                      zero_point=zero_point, qmin=-128, qmax=127)


def _ops() -> list[ir.Op]:
    """One small instance of every IR class, values chosen to exercise each storage width."""
    def io(name: str, inputs: list[str]) -> dict:
        return {"name": name, "inputs": inputs, "outputs": [f"{name}_out"]}

    return [
        ir.Conv(**io("conv", ["x"]), weight=np.arange(-54, 54, dtype=I64).reshape(3, 2, 3, 6) % 128,
                bias=np.array([-1 << 20, 5, 1 << 31], I64), requant=_requant(3, -3),
                strides=(1, 2), pads=(0, 1, 1, 0), dilations=(1, 1), group=1, pad_value=-3,
                acc_bits=np.array([22, 22, 33], I64)),
        ir.Gemm(**io("gemm", ["conv_out"]), weight=np.array([[-128, 127], [1, 0]], I64),
                bias=np.array([128, -129], I64), requant=_requant(2), acc_bits=np.array([17, 9], I64)),
        ir.MaxPool(**io("maxpool", ["gemm_out"]), kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                   dilations=(1, 1), pad_value=-128),
        ir.AvgPool(**io("avgpool", ["maxpool_out"]), kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                   count_include_pad=False, input_zero_point=7, divisors=np.array([4, 6, 9], I64),
                   requant=_requant(3, 2), acc_bits=14),
        ir.GlobalAvgPool(**io("gap", ["avgpool_out"]), input_zero_point=-1, requant=_requant(1),
                         acc_bits=15),
        ir.Add(**io("add", ["gap_out", "maxpool_out"]), zero_a=1, zero_b=-2, mult_a=1 << 14,
               mult_b=12345, shift=15, zero_point=0, qmin=0, qmax=255, acc_bits=26),
        ir.Mul(**io("mul", ["add_out", "gap_out"]), zero_a=0, zero_b=3, multiplier=(1 << 40) + 1,
               shift=50, zero_point=-5, qmin=-128, qmax=127, acc_bits=17),
        ir.Affine(**io("affine", ["mul_out"]), input_zero_point=2,
                  scale=np.array([3, -70000], I64).reshape(2, 1, 1),
                  offset=np.array([-(1 << 40), 0], I64).reshape(2, 1, 1), shift=7, zero_point=1,
                  qmin=-8, qmax=7, acc_bits=60),
        ir.Clamp(**io("clamp", ["affine_out"]), low=0, high=6),
        ir.Lut(**io("lut", ["clamp_out"]), table=np.arange(256, dtype=I64) - 128, input_min=-128),
        ir.Softmax(**io("softmax", ["lut_out"]), axis=-1,
                   exp_table=np.round(np.exp(np.arange(-255, 1) / 32.0) * (1 << 16)).astype(I64),
                   out_range=256, qmax=255),
        ir.ArgMax(**io("argmax", ["softmax_out"]), axis=1, keepdims=True),
        ir.Gather(**io("gather", ["argmax_out"]), table=np.array([], I64)),
        ir.Concat(**io("concat", ["clamp_out", "lut_out"]), axis=1),
        ir.Reshape(**io("reshape", ["concat_out"]), shape=()),
        ir.Transpose(**io("transpose", ["reshape_out"]), perm=(0, 2, 3, 1)),
        ir.Pad(**io("pad", ["transpose_out"]), pads=(0, 0, 1, 2, 0, 0, 3, 4), value=-128),
        ir.Slice(**io("slice", ["pad_out"]), starts=(1,), ends=(-1,), axes=(2,)),
    ]


def _graph() -> ir.IntGraph:
    ops = _ops()
    tensors = {"x": ir.TensorSpec((1, 8, 8), QParams(1 / 255, 0, IntType(8, False)))}
    for i, op in enumerate(ops):
        scale = math.pi / 10 ** i  # not a short decimal: checks floats survive bit for bit
        itype = IntType(2 + i % 15, i % 2 == 0)
        tensors[op.outputs[0]] = ir.TensorSpec((i % 4 + 1, 3), QParams(scale, i - 9, itype))
    return ir.IntGraph(ops=ops, tensors=tensors, input="x", outputs=["slice_out", "gather_out"],
                       name="every_op", meta={"weight_bits": "8", "calibration": "minmax", "a": "é"})


def _assert_same(a: object, b: object, where: str) -> None:
    """Equal field by field, with the types a loaded graph must have."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and b.dtype == np.int64, where
        np.testing.assert_array_equal(a, b, err_msg=where)
        assert a.shape == b.shape, where
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):  # the file keeps the input and outputs first: order may change
        assert sorted(a) == sorted(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def test_the_test_graph_has_every_ir_class():
    assert {type(op) for op in _ops()} == set(ir.OP_CLASSES)


def _read(path) -> ir.IntGraph:
    """The every-op graph's shapes are arbitrary, so it cannot run: read it without the run
    check of `intfile.load` (tests/test_hostile_data.py covers that check)."""
    return intfile.from_model(onnx.load(path), str(path))


def test_round_trip_is_exact(tmp_path):
    graph = _graph()
    intfile.save(graph, tmp_path / "m.onnx")
    loaded = _read(tmp_path / "m.onnx")
    _assert_same(graph, loaded, "graph")
    for op in loaded.ops:  # also written as int64 arrays by hand above: the load restores int64
        for f in dataclasses.fields(op):
            if isinstance(getattr(op, f.name), np.ndarray):
                assert getattr(op, f.name).dtype == np.int64


def test_save_load_save_gives_identical_bytes(tmp_path):
    intfile.save(_graph(), tmp_path / "a.onnx")
    intfile.save(_read(tmp_path / "a.onnx"), tmp_path / "b.onnx")
    intfile.save(_graph(), tmp_path / "c.onnx")
    first = (tmp_path / "a.onnx").read_bytes()
    assert (tmp_path / "b.onnx").read_bytes() == first
    assert (tmp_path / "c.onnx").read_bytes() == first


def test_file_is_valid_onnx_that_people_can_read(tmp_path):
    intfile.save(_graph(), tmp_path / "m.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model, full_check=True)
    conv = model.graph.node[0]
    assert (conv.domain, conv.op_type, conv.name) == ("ai.intforge", "Conv", "conv")
    assert list(conv.input) == ["x", "conv.weight", "conv.bias", "conv.requant.multiplier",
                                "conv.requant.shift", "conv.acc_bits"]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs == {"requant.zero_point": -3, "requant.qmin": -128, "requant.qmax": 127,
                     "strides": [1, 2], "pads": [0, 1, 1, 0], "dilations": [1, 1], "group": 1,
                     "pad_value": -3}
    x = model.graph.input[0]
    assert json.loads(x.doc_string) == {"bits": 8, "scale": 1 / 255, "signed": False, "zero_point": 0}
    assert x.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == ["N", 1, 8, 8]
    assert [p.key for p in model.metadata_props] == ["a", "calibration", "weight_bits"]


def test_arrays_are_stored_in_the_smallest_exact_type(tmp_path):
    intfile.save(_graph(), tmp_path / "m.onnx")
    inits = onnx.load(tmp_path / "m.onnx").graph.initializer
    stored = {t.name: numpy_helper.to_array(t).dtype for t in inits}
    assert stored["conv.weight"] == np.int8  # 0..127
    assert stored["gemm.weight"] == np.int8  # exactly -128..127
    assert stored["gemm.bias"] == np.int16  # 128 and -129
    assert stored["conv.requant.multiplier"] == np.int16  # 30001
    assert stored["affine.scale"] == np.int32  # -70000
    assert stored["conv.bias"] == np.int64  # 2^31
    assert stored["affine.offset"] == np.int64  # -2^40
    assert stored["gather.table"] == np.int8  # empty


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        intfile.save(_graph(), path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def _float_model() -> onnx.ModelProto:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    return helper.make_model(graph)


def _edited(edit) -> bytes:
    model = intfile.to_model(_graph())
    edit(model)
    return model.SerializeToString()


@pytest.mark.parametrize("content, message", [
    (None, r"^cannot read integer model .*missing\.onnx: No such file or directory$"),
    (b"\xff\xff\xff garbage", r"^.*bad\.onnx is not an ONNX file$"),
    (b"", r"^.*bad\.onnx is not an intforge integer model"),
    (_float_model().SerializeToString(), r"^.*bad\.onnx is not an intforge integer model"),
    (_edited(lambda m: m.opset_import[0].__setattr__("version", 2)), "format version 2"),
    (_edited(lambda m: m.graph.node[0].__setattr__("op_type", "Frobnicate")),
     r"^.*bad\.onnx: node 'conv' \(Frobnicate\): unknown integer operator$"),
    (_edited(lambda m: m.graph.node[2].attribute.pop()),
     r"^.*bad\.onnx: node 'maxpool' \(MaxPool\): missing attribute 'pad_value'$"),
    (_edited(lambda m: m.graph.node[0].input.pop()), r"node 'conv' \(Conv\): inputs must end"),
    (_edited(lambda m: m.graph.initializer.pop(0)), r"node 'conv' \(Conv\): array 'weight' is missing"),
    (_edited(lambda m: m.graph.node[1].attribute[0].__setattr__("type", onnx.AttributeProto.FLOAT)),
     r"node 'gemm' \(Gemm\): attribute 'requant.zero_point' must be INT, not FLOAT"),
    (_edited(lambda m: m.graph.input[0].__setattr__("doc_string", "{}")),
     r"^.*bad\.onnx: tensor 'x' has no valid quantization parameters"),
])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / ("missing.onnx" if content is None else "bad.onnx")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        intfile.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
