"""Hostile and malformed data files, config files and integer model files given to the
`intforge` commands, run as a user runs them.

Every case must end with exit code 2, exactly one stderr line `intforge: error: ...` naming
the offending file and the problem, no traceback, and no output file (not even a temporary
one). Data files are .npz archives read with allow_pickle=False; integer models are files
written by `intforge quantize`, then damaged by hand as an editor or a bad disk would.
"""
from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cliutil import REPO_ROOT, assert_user_error, intforge

MODEL = REPO_ROOT / "models" / "digits_cnn.onnx"  # x float32 (N, 1, 8, 8) -> 10 logits
CALIB = REPO_ROOT / "models" / "digits_calib.npz"
TEST = REPO_ROOT / "models" / "digits_test.npz"
RNG = np.random.default_rng(11)
X = RNG.random((6, 1, 8, 8), dtype=np.float32)
Y = np.arange(6, dtype=np.int64)

Maker = Callable[[Path], Path]
"""Writes a hostile file into the given folder and returns its path."""


def _leaves_nothing(folder: Path, *inputs: Path) -> None:
    """Only the inputs are left in `folder`: no output, no temporary file."""
    assert sorted(folder.iterdir()) == sorted(p for p in inputs if p.parent == folder and p.exists())


# ---- data files ----------------------------------------------------------------------
def _npz(**arrays: np.ndarray) -> Maker:
    def make(folder: Path) -> Path:
        np.savez(folder / "data.npz", **arrays)
        return folder / "data.npz"
    return make


def _raw(data: bytes) -> Maker:
    def make(folder: Path) -> Path:
        (folder / "data.npz").write_bytes(data)
        return folder / "data.npz"
    return make


def _zip(members: dict[str, bytes]) -> Maker:
    """An .npz written member by member, so that a member can be anything."""
    def make(folder: Path) -> Path:
        with zipfile.ZipFile(folder / "data.npz", "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
        return folder / "data.npz"
    return make


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _lying_header() -> bytes:
    """A .npy header declaring 2^40 float32 (4 TiB), followed by 16 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1 << 40, 1, 8, 8)})
    return buffer.getvalue() + bytes(16)


def _corrupted_member(folder: Path) -> Path:
    """A compressed .npz whose x member has a damaged deflate stream."""
    np.savez_compressed(folder / "data.npz", x=RNG.random((64, 1, 8, 8)).astype(np.float32))
    data = bytearray((folder / "data.npz").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    (folder / "data.npz").write_bytes(bytes(data))
    return folder / "data.npz"


def _truncated(folder: Path) -> Path:
    data = (_npz(x=X, y=Y)(folder)).read_bytes()
    (folder / "data.npz").write_bytes(data[:len(data) // 2])
    return folder / "data.npz"


def _directory(folder: Path) -> Path:
    (folder / "data.npz").mkdir()
    return folder / "data.npz"


def _plain_npy(folder: Path) -> Path:
    (folder / "data.npz").write_bytes(_npy(X))
    return folder / "data.npz"


def _npy_lying_header(folder: Path) -> Path:
    (folder / "data.npz").write_bytes(_lying_header())
    return folder / "data.npz"


def _with_nan(value: float, dtype: type = np.float32) -> np.ndarray:
    x = X.astype(dtype)
    x[3, 0, 4, 4] = value
    return x


DATA_CASES = [  # (id, maker, words besides the file name); given as --calib to quantize
    ("pickled-object-array", _npz(x=np.array([{"evil": 1}] * 6, dtype=object)), ["Python objects"]),
    ("pickle-file", _raw(pickle.dumps({"x": X})), ["not an .npz archive"]),
    ("npy-file", _plain_npy, ["single array"]),
    ("npy-declaring-4-tib", _npy_lying_header, ["single array"]),
    ("member-declaring-4-tib", _zip({"x.npy": _lying_header()}), ["'x'", "declares shape"]),
    ("member-not-npy", _zip({"x.npy": b"just text"}), ["'x'", "not a readable .npy"]),
    ("member-without-suffix", _zip({"x": b"\x93NUMPY garbage"}), ["'x'", "not a readable .npy"]),
    ("corrupted-member", _corrupted_member, ["'x'"]),
    ("truncated", _truncated, ["not an .npz archive"]),
    ("empty-file", _raw(b""), ["not an .npz archive"]),
    ("text-file", _raw(b"x = [1, 2, 3]\n"), ["not an .npz archive"]),
    ("onnx-file", lambda folder: _raw(MODEL.read_bytes())(folder), ["not an .npz archive"]),
    ("directory", _directory, ["not a file"]),
    ("missing", lambda folder: folder / "data.npz", ["no such file"]),
    ("empty-archive", _zip({}), ["no array named 'x'", "found nothing"]),
    ("no-x", _npz(images=X, y=Y), ["no array named 'x'", "'images'"]),
    ("strings", _npz(x=np.array([["a"] * 64] * 6).reshape(6, 1, 8, 8)), ["real numbers", "<U1"]),
    ("bytes", _npz(x=np.full((6, 1, 8, 8), b"a")), ["real numbers"]),
    ("complex", _npz(x=X.astype(np.complex64)), ["real numbers", "complex64"]),
    ("bool", _npz(x=X > 0.5), ["real numbers", "bool"]),
    ("datetime", _npz(x=np.zeros((6, 1, 8, 8), "datetime64[s]")), ["real numbers", "datetime64"]),
    ("structured", _npz(x=np.zeros((6, 1, 8, 8), [("a", "f4"), ("b", "f4")])), ["real numbers"]),
    ("flat-samples", _npz(x=X.reshape(6, 64)), ["samples of shape 64", "expects 1x8x8"]),
    ("wrong-rank", _npz(x=X.reshape(6, 8, 8)), ["samples of shape 8x8"]),
    ("one-dimensional", _npz(x=X.reshape(-1)), ["scalar"]),
    ("no-samples", _npz(x=np.zeros((0, 1, 8, 8), np.float32)), ["empty"]),
    ("zero-dimensional", _npz(x=np.float32(1.0)), ["empty"]),
    ("nan", _npz(x=_with_nan(np.nan)), ["NaN", "sample 3"]),
    ("inf", _npz(x=_with_nan(np.inf)), ["infinite", "sample 3"]),
    ("minus-inf", _npz(x=_with_nan(-np.inf)), ["infinite", "sample 3"]),
    ("beyond-float32", _npz(x=_with_nan(1e300, np.float64)), ["infinite", "as float32"]),
    ("overflows-in-the-model", _npz(x=np.full((6, 1, 8, 8), 3e38, np.float32)), ["non-finite"]),
]


@pytest.mark.parametrize("make, words", [pytest.param(m, w, id=i) for i, m, w in DATA_CASES])
def test_bad_calibration_data_is_refused(tmp_path, make, words):
    data = make(tmp_path)
    out = tmp_path / "out.onnx"
    result = intforge("quantize", MODEL, "--calib", data, "-o", out, cwd=tmp_path)
    assert_user_error(result, data.name, *words)
    _leaves_nothing(tmp_path, data)


# ---- labels: eval and compare, float and integer models ------------------------------
@pytest.fixture(scope="module")
def int_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("int") / "digits.int.onnx"
    result = intforge("quantize", MODEL, "--calib", CALIB, "-o", out)
    assert result.returncode == 0, result.stderr
    return out


LABEL_CASES = [  # (id, y, words)
    ("float-labels", Y.astype(np.float32), ["y must hold integer class labels", "float32"]),
    ("string-labels", Y.astype(str), ["y must hold integer class labels"]),
    ("negative-label", np.array([0, 1, -1, 2, 3, 4]), ["label -1", "10 classes"]),
    ("label-out-of-range", np.array([0, 1, 2, 10, 3, 4]), ["label 10", "10 classes"]),
    ("label-beyond-int64", np.array([0, 1, 2, 1 << 63, 3, 4], np.uint64), ["too large"]),
    ("too-few-labels", Y[:5], ["y has shape (5,)", "expected (6,)"]),
    ("one-hot-labels", np.eye(10, dtype=np.int64)[Y], ["y has shape (6, 10)"]),
]


LABEL_COMMANDS = {  # the commands that score labels: the float and the integer side
    "eval-float": lambda int_model: ("eval", MODEL),
    "eval-integer": lambda int_model: ("eval", int_model),
    "compare": lambda int_model: ("compare", MODEL, int_model),
}


@pytest.mark.parametrize("command", sorted(LABEL_COMMANDS))
@pytest.mark.parametrize("y, words", [pytest.param(y, w, id=i) for i, y, w in LABEL_CASES])
def test_bad_labels_are_refused(tmp_path, int_model, command, y, words):
    data = _npz(x=X, y=y)(tmp_path)
    args = LABEL_COMMANDS[command](int_model)
    assert_user_error(intforge(*args, "--data", data, cwd=tmp_path), data.name, *words)
    _leaves_nothing(tmp_path, data)


DATA_COMMANDS = {  # every command that reads a data file: (int model, data, output) -> arguments
    "eval": lambda model, data, out: ("eval", model, "--data", data),
    "run": lambda model, data, out: ("run", model, "--data", data, "-o", out),
    "check": lambda model, data, out: ("check", model, "--data", data),
    "compare": lambda model, data, out: ("compare", MODEL, model, "--data", data),
    "quantize": lambda model, data, out: ("quantize", MODEL, "--calib", data, "-o", out),
}


@pytest.mark.parametrize("command", sorted(DATA_COMMANDS))
def test_every_command_reads_data_without_unpickling(tmp_path, int_model, command):
    """A pickle renamed .npz must never be unpickled, whichever command reads it."""
    marker = tmp_path / "pwned"
    data = _raw(pickle.dumps(_Exploit(str(marker))))(tmp_path)
    args = DATA_COMMANDS[command](int_model, data, tmp_path / "out")
    assert_user_error(intforge(*args, cwd=tmp_path), data.name, "not an .npz archive")
    assert not marker.exists()
    _leaves_nothing(tmp_path, data)


class _Exploit:
    """Unpickling this creates a file: proof that a loader ran pickled code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---- config files (quantize --config) ------------------------------------------------
CONFIG_CASES = [  # (id, TOML text or bytes, words)
    ("unknown-top-level-key", '[model]\nname = "digits"\n', ["unknown key 'model'"]),
    ("unknown-layer-key", '[layers."/conv1/Conv"]\nbits = 4\n', ["unknown key 'bits'", "weight_bits"]),
    ("bits-0", '[layers."/conv1/Conv"]\nweight_bits = 0\n', ["weight_bits", "from 2 to 16", "not 0"]),
    ("bits-1", '[layers."/conv1/Conv"]\nweight_bits = 1\n', ["weight_bits", "not 1"]),
    ("bits-17", '[layers."/conv1/Conv"]\nact_bits = 17\n', ["act_bits", "not 17"]),
    ("bits-negative", '[layers."/conv1/Conv"]\nweight_bits = -3\n', ["weight_bits", "not -3"]),
    ("bits-fraction", '[layers."/conv1/Conv"]\nweight_bits = 8.5\n', ["weight_bits", "not 8.5"]),
    ("bits-string", '[layers."/conv1/Conv"]\nweight_bits = "8"\n', ["weight_bits", "not '8'"]),
    ("bits-bool", '[layers."/conv1/Conv"]\nweight_bits = true\n', ["weight_bits", "not True"]),
    ("bits-list", '[layers."/conv1/Conv"]\nweight_bits = [8]\n', ["weight_bits", "not [8]"]),
    ("bits-huge", '[layers."/conv1/Conv"]\nweight_bits = 9223372036854775807\n', ["weight_bits"]),
    ("layer-not-in-model", '[layers."/conv9/Conv"]\nweight_bits = 4\n',
     ["config names layers that are not in the model", "/conv9/Conv"]),
    ("malformed-toml", '[layers."/conv1/Conv"\nweight_bits = 4\n', ["not valid TOML"]),
    ("duplicate-key", '[layers."/conv1/Conv"]\nweight_bits = 4\nweight_bits = 5\n', ["not valid TOML"]),
    ("layers-not-a-table", "layers = 3\n", ["'layers' must be a table"]),
    ("layer-not-a-table", '[layers]\n"/conv1/Conv" = 4\n', ["must be a table"]),
    ("deeply-nested", "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", ["config.toml"]),
    ("binary", bytes(range(256)), ["cannot read"]),
]


@pytest.mark.parametrize("text, words", [pytest.param(t, w, id=i) for i, t, w in CONFIG_CASES])
def test_bad_config_is_refused(tmp_path, text, words):
    config = tmp_path / "config.toml"
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out.onnx"
    result = intforge("quantize", MODEL, "--calib", CALIB, "--config", config, "-o", out, cwd=tmp_path)
    named = MODEL.name if "not in the model" in words[0] else config.name
    assert_user_error(result, named, *words)
    _leaves_nothing(tmp_path, config)


UNREADABLE_CONFIGS = {"missing": lambda folder: folder / "config.toml", "directory": lambda folder: folder}


@pytest.mark.parametrize("where", sorted(UNREADABLE_CONFIGS))
def test_unreadable_config_is_refused(tmp_path, where):
    config = UNREADABLE_CONFIGS[where](tmp_path)
    out = tmp_path / "out.onnx"
    result = intforge("quantize", MODEL, "--calib", CALIB, "--config", config, "-o", out, cwd=tmp_path)
    assert_user_error(result, str(config))
    assert not out.exists()


# ---- integer model files -------------------------------------------------------------
Edit = Callable[[onnx.ModelProto], None]


def _node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _set_array(name: str, value: Callable[[np.ndarray], np.ndarray]) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        tensor = _init(model, name)
        tensor.CopyFrom(numpy_helper.from_array(value(numpy_helper.to_array(tensor)), name))
    return edit


def _drop_attribute(node: str, attribute: str) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        attrs = _node(model, node).attribute
        attrs.remove(next(a for a in attrs if a.name == attribute))
    return edit


def _set_attribute(node: str, attribute: str, value) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        attrs = _node(model, node).attribute
        attrs.remove(next(a for a in attrs if a.name == attribute))
        attrs.append(helper.make_attribute(attribute, value))
    return edit


def _set_spec(tensor: str, **fields) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        info = next(v for v in (*model.graph.input, *model.graph.value_info) if v.name == tensor)
        info.doc_string = info.doc_string.replace("}", "").rstrip() + "".join(
            f', "{k}": {v}' for k, v in fields.items()) + "}"  # later keys win in JSON
    return edit


def _drop_spec(model: onnx.ModelProto) -> None:
    infos = model.graph.value_info
    infos.remove(next(v for v in infos if v.name == "/pool/MaxPool_output_0"))


def _free_input_dim(model: onnx.ModelProto) -> None:
    dim = model.graph.input[0].type.tensor_type.shape.dim[2]
    dim.ClearField("dim_value")
    dim.dim_param = "H"


def _swap_first_nodes(model: onnx.ModelProto) -> None:
    first, second = onnx.NodeProto(), onnx.NodeProto()
    first.CopyFrom(model.graph.node[0])
    second.CopyFrom(model.graph.node[1])
    model.graph.node[0].CopyFrom(second)
    model.graph.node[1].CopyFrom(first)


def _rename(node: str, **io: str) -> Edit:
    """Rename a node (`name`), or its first input or output (`input`, `output`)."""
    def edit(model: onnx.ModelProto) -> None:
        target = _node(model, node)
        if "name" in io:
            target.name = io["name"]
        if "input" in io:
            target.input[0] = io["input"]
        if "output" in io:
            target.output[0] = io["output"]
    return edit


def _external_array(model: onnx.ModelProto) -> None:
    tensor = _init(model, "/fc/Gemm.weight")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"


def _huge_array(model: onnx.ModelProto) -> None:
    tensor = _init(model, "/fc/Gemm.weight")
    tensor.ClearField("raw_data")
    del tensor.dims[:]
    tensor.dims.extend([1 << 20, 1 << 20])


def _second_input(model: onnx.ModelProto) -> None:
    model.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.INT8, ["N", 4]))


def _foreign_node(model: onnx.ModelProto) -> None:
    model.graph.node[0].domain = "com.example"


def _version_2(model: onnx.ModelProto) -> None:
    model.opset_import[0].version = 2


CONV1 = "/conv1/Conv"
TAMPER_CASES = [  # (id, edit of the ModelProto written by quantize, words)
    ("attribute-removed", _drop_attribute(CONV1, "strides"), [CONV1, "missing attribute 'strides'"]),
    ("attribute-wrong-type", _set_attribute(CONV1, "group", "one"), [CONV1, "'group' must be INT"]),
    ("attribute-wrong-arity", _set_attribute(CONV1, "strides", [1, 1, 1]), [CONV1, "strides", "2 values"]),
    ("zero-stride", _set_attribute(CONV1, "strides", [0, 1]), [CONV1, "strides", "at least 1"]),
    ("negative-pads", _set_attribute(CONV1, "pads", [-1, 0, 0, 0]), [CONV1, "pads", "at least 0"]),
    ("zero-group", _set_attribute(CONV1, "group", 0), [CONV1, "group", "at least 1"]),
    ("qmin-above-qmax", _set_attribute(CONV1, "requant.qmin", 300), [CONV1, "qmin 300 is above"]),
    ("add-shift-zero", _set_attribute("/Add", "shift", 0), ["/Add", "shift 0", "at least 1"]),
    ("add-shift-too-large", _set_attribute("/Add", "shift", 70), ["/Add", "shift 70", "at most 62"]),
    ("requant-shift-out-of-range", _set_array(f"{CONV1}.requant.shift", lambda a: a + 64),
     [CONV1, "requant.shift", "at most 62"]),
    ("requant-shift-negative", _set_array(f"{CONV1}.requant.shift", lambda a: -a), [CONV1, "requant.shift"]),
    ("requant-too-few-channels", _set_array(f"{CONV1}.requant.multiplier", lambda a: a[:3]),
     [CONV1, "requant multiplier"]),
    ("acc-bits-too-large", _set_array(f"{CONV1}.acc_bits", lambda a: a + 100), [CONV1, "acc_bits", "at most 64"]),
    ("weight-transposed", _set_array("/fc/Gemm.weight", lambda a: a.T.copy()), ["/fc/Gemm", "bias has shape"]),
    ("weight-wrong-rank", _set_array(f"{CONV1}.weight", lambda a: a.reshape(len(a), -1)),
     [CONV1, "does not fit a Conv"]),
    ("weight-for-another-input", _set_array("/fc/Gemm.weight", lambda a: a[:, :-1].copy()),
     ["does not run", "mismatch"]),
    ("conv-weight-for-another-input", _set_array("/conv2/Conv.weight", lambda a: a[:, :-1].copy()),
     ["does not run"]),
    ("spec-shape-not-computed", lambda m: m.graph.value_info[0].type.tensor_type.shape.dim[1].__setattr__(
        "dim_value", 5), ["does not run", "/conv1/Conv", "(5, 8, 8)"]),
    ("reshape-to-another-size", _set_attribute("/Flatten", "shape", [7]), ["does not run"]),
    ("bias-wrong-length", _set_array(f"{CONV1}.bias", lambda a: a[:-1]), [CONV1, "bias has shape (7,)"]),
    ("array-as-float", _set_array(f"{CONV1}.weight", lambda a: a.astype(np.float32)), [CONV1, "integers"]),
    ("array-missing", lambda m: m.graph.initializer.remove(_init(m, f"{CONV1}.bias")), [CONV1, "'bias' is missing"]),
    ("array-external", _external_array, ["/fc/Gemm", "external data"]),
    ("array-huge-without-data", _huge_array, ["/fc/Gemm", "does not match its shape"]),
    ("spec-missing", _drop_spec, ["'/pool/MaxPool_output_0'", "no type"]),
    ("spec-garbage", lambda m: m.graph.input[0].__setattr__("doc_string", "{not json"),
     ["'x'", "no valid quantization parameters"]),
    ("spec-negative-scale", _set_spec("x", scale=-0.5), ["'x'", "scale -0.5"]),
    ("spec-nan-scale", _set_spec("x", scale="NaN"), ["'x'", "scale nan"]),
    ("spec-zero-bits", _set_spec("x", bits=0), ["'x'", "0 bits"]),
    ("spec-99-bits", _set_spec("x", bits=99), ["'x'", "99 bits"]),
    ("spec-free-dimension", _free_input_dim, ["'x'", "fixed positive sizes"]),
    ("input-undefined", _rename("/conv2/Conv", input="nowhere"), ["/conv2/Conv", "'nowhere'"]),
    ("nodes-out-of-order", _swap_first_nodes, ["/conv2/Conv", "'/Relu_output_0'", "earlier node"]),
    ("duplicate-node-name", _rename("/pool/MaxPool", name="/Add"), ["/Add", "same name"]),
    ("tensor-defined-twice", _rename("/conv2/Conv", output="/Relu_output_0"), ["/conv2/Conv", "one new tensor"]),
    ("output-not-computed", _rename("/fc/Gemm", output="elsewhere"), ["'logits'", "not computed"]),
    ("unknown-operator", lambda m: _node(m, CONV1).__setattr__("op_type", "Frobnicate"),
     [CONV1, "unknown integer operator"]),
    ("two-inputs", _second_input, ["one input, not 2"]),
    ("foreign-node", _foreign_node, ["not an intforge integer model"]),
    ("format-version-2", _version_2, ["format version 2"]),
]

RAW_CASES = [  # (id, bytes of the file, words): not even an ONNX model to edit
    ("float-model", MODEL.read_bytes(), ["not an intforge integer model"]),
    ("truncated", None, ["not an ONNX file"]),
    ("empty-file", b"", ["not an intforge integer model"]),
    ("random-bytes", RNG.integers(0, 256, 2048, dtype=np.uint8).tobytes(), ["not an ONNX file"]),
]


def _tampered(int_model: Path, edit: Edit, folder: Path) -> Path:
    model = onnx.load(int_model)
    edit(model)
    path = folder / "tampered.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("edit, words", [pytest.param(e, w, id=i) for i, e, w in TAMPER_CASES])
def test_tampered_integer_model_is_refused(tmp_path, int_model, edit, words):
    model = _tampered(int_model, edit, tmp_path)
    out = tmp_path / "out.npz"
    result = intforge("run", model, "--data", TEST, "-o", out, cwd=tmp_path)
    assert_user_error(result, model.name, *words)
    _leaves_nothing(tmp_path, model)


@pytest.mark.parametrize("data, words", [pytest.param(d, w, id=i) for i, d, w in RAW_CASES])
def test_unreadable_integer_model_is_refused(tmp_path, int_model, data, words):
    model = tmp_path / "model.onnx"
    model.write_bytes(int_model.read_bytes()[:int_model.stat().st_size // 2] if data is None else data)
    out = tmp_path / "out.onnx"
    assert_user_error(intforge("export-onnx", model, "-o", out, cwd=tmp_path), model.name, *words)
    _leaves_nothing(tmp_path, model)


INTEGER_COMMANDS = {  # command -> its arguments around the integer model, and its output
    "eval": lambda model, out: ("eval", model, "--data", TEST),
    "run": lambda model, out: ("run", model, "--data", TEST, "-o", out),
    "check": lambda model, out: ("check", model, "--data", TEST),
    "export-onnx": lambda model, out: ("export-onnx", model, "-o", out),
    "inspect": lambda model, out: ("inspect", model),
    "compare": lambda model, out: ("compare", MODEL, model, "--data", TEST, "--report", out),
    "hw": lambda model, out: ("hw", model, "-o", out),
}


@pytest.mark.parametrize("command", sorted(INTEGER_COMMANDS))
def test_every_integer_command_validates_on_load(tmp_path, int_model, command):
    model = _tampered(int_model, _set_attribute("/Add", "shift", 70), tmp_path)
    args = INTEGER_COMMANDS[command](model, tmp_path / "out")
    assert_user_error(intforge(*args, cwd=tmp_path), model.name, "shift 70")
    _leaves_nothing(tmp_path, model)


FLOAT_REFUSERS = sorted(set(INTEGER_COMMANDS) - {"eval"})  # eval runs float models too


@pytest.mark.parametrize("command", FLOAT_REFUSERS)
def test_every_integer_command_refuses_a_float_model(tmp_path, command):
    args = INTEGER_COMMANDS[command](MODEL, tmp_path / "out")
    assert_user_error(intforge(*args, cwd=tmp_path), MODEL.name)
    _leaves_nothing(tmp_path)


# ---- the count in docs/reliability.md ------------------------------------------------
def hostile_inputs() -> dict[str, int]:
    """How many hostile inputs these tests and tests/test_hostile_models.py try, by kind:
    the table of docs/reliability.md."""
    from test_hostile_models import CASES as MODEL_CASES, EVAL_CASES

    return {
        "float model files": len(MODEL_CASES),
        "float model files run as they are": len(EVAL_CASES),
        "data files": len(DATA_CASES),
        "labels": len(LABEL_CASES) * len(LABEL_COMMANDS),
        "pickles": len(DATA_COMMANDS),
        "config files": len(CONFIG_CASES) + len(UNREADABLE_CONFIGS),
        "damaged integer model files": len(TAMPER_CASES) + len(RAW_CASES),
        "integer model files, every command": len(INTEGER_COMMANDS) + len(FLOAT_REFUSERS),
    }


def test_reliability_doc_counts_every_hostile_input():
    text = (REPO_ROOT / "docs" / "reliability.md").read_text()
    rows = re.findall(r"^\| ([^|*]+?) \| [^|]* \| (\d+) \|$", text, re.MULTILINE)
    counts = hostile_inputs()
    assert {kind: int(n) for kind, n in rows} == counts
    assert f"hostile inputs tried: {sum(counts.values())}, all refused with exit 2 and one line" in text
