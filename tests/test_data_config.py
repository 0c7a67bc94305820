"""User files: .npz datasets, TOML configs, and atomic writes. Every bad input is one
DataError line that names the file (and the key or array at fault)."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from quant.atomic import atomic_write, check_destination
from quant.config import load_config
from quant.data import load_dataset
from quant.errors import DataError
from quant.options import LayerOverride

X = np.arange(2 * 1 * 2 * 2, dtype=np.float32).reshape(2, 1, 2, 2)


def save(path, **arrays):
    np.savez(path, **arrays)
    return path


# ---- datasets ---------------------------------------------------------------------
def test_good_dataset_keeps_values_and_casts(tmp_path):
    x_int = np.arange(8, dtype=np.int16).reshape(2, 1, 2, 2)
    data = load_dataset(save(tmp_path / "d.npz", x=x_int, y=np.array([3, 1], np.int32)),
                        input_shape=(1, 2, 2))
    assert data.x.dtype == np.float32 and data.y.dtype == np.int64
    np.testing.assert_array_equal(data.x, x_int.astype(np.float64))
    np.testing.assert_array_equal(data.y, [3, 1])
    assert len(data) == 2 and data.source == str(tmp_path / "d.npz")


def test_labels_are_optional_and_free_dimensions_match(tmp_path):
    data = load_dataset(save(tmp_path / "d.npz", x=X), input_shape=(1, None, 2))
    assert data.y is None


def test_bundled_digits_load(digits_calib, digits_test):
    assert digits_calib.x.shape == (200, 1, 8, 8) and digits_test.x.shape == (360, 1, 8, 8)
    assert digits_test.y.shape == (360,)


def raw(data: bytes):
    def make(path):
        path.write_bytes(data)
        return path
    return make


def npy(path):
    with open(path, "wb") as f:
        np.save(f, X)
    return path


def marked(where):
    """X with NaN or -inf where `where(flat index)` holds."""
    return lambda value: np.where(where(np.arange(X.size).reshape(X.shape)), value, X)


BAD = [  # (path maker, words the message must contain)
    pytest.param(lambda p: p, ["no such file"], id="missing"),
    pytest.param(lambda p: (p.mkdir(), p)[1], ["not a file"], id="directory"),
    pytest.param(raw(b"this is not numpy\n" * 10), ["not an .npz"], id="garbage"),
    pytest.param(raw(b""), ["not an .npz"], id="empty-file"),
    pytest.param(npy, ["not an .npz", "single array"], id="npy"),
    pytest.param(lambda p: save(p, images=X), ["no array named 'x'", "'images'"], id="no-x"),
    pytest.param(lambda p: save(p, x=np.array([{"a": 1}, None], dtype=object)), ["'x'", "objects"],
                 id="objects"),
    pytest.param(lambda p: save(p, x=np.array(["1", "2"])), ["x must hold real numbers", "<U1"],
                 id="strings"),
    pytest.param(lambda p: save(p, x=np.ones((2, 3), bool)), ["x must hold real numbers", "bool"],
                 id="bool"),
    pytest.param(lambda p: save(p, x=np.ones((2, 3), np.complex64)), ["real numbers", "complex64"],
                 id="complex"),
    pytest.param(lambda p: save(p, x=np.zeros((0, 1, 2, 2), np.float32)), ["x is empty"], id="empty-x"),
    pytest.param(lambda p: save(p, x=np.float32(3)), ["x is empty"], id="scalar-x"),
    pytest.param(lambda p: save(p, x=marked(lambda i: i == 5)(np.nan)),
                 ["1 NaN or infinite", "sample 1"], id="nan"),
    pytest.param(lambda p: save(p, x=marked(lambda i: i < 2)(-np.inf)),
                 ["2 NaN or infinite", "sample 0"], id="inf"),
    pytest.param(lambda p: save(p, x=np.full((2, 1, 2, 2), 1e300)), ["NaN or infinite"],
                 id="overflows-float32"),
    pytest.param(lambda p: save(p, x=X, y=np.array([1])), ["y has shape (1,)", "expected (2,)"],
                 id="y-too-short"),
    pytest.param(lambda p: save(p, x=X, y=np.array([[1], [2]])), ["y has shape (2, 1)"], id="y-2d"),
    pytest.param(lambda p: save(p, x=X, y=np.array([1.0, 2.0])), ["integer class labels", "float64"],
                 id="y-float"),
    pytest.param(lambda p: save(p, x=X.reshape(2, 4)), ["samples of shape 4", "expects 1x2x2"],
                 id="wrong-shape"),
]


@pytest.mark.parametrize("make, words", BAD)
def test_bad_dataset_is_one_line_naming_the_file(tmp_path, make, words):
    path = make(tmp_path / "data.npz")
    with pytest.raises(DataError) as info:
        load_dataset(path, input_shape=(1, 2, 2))
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for word in words:
        assert word in message, message


def test_shape_is_only_checked_when_given(tmp_path):
    assert load_dataset(save(tmp_path / "d.npz", x=X.reshape(2, 4))).x.shape == (2, 4)


# ---- atomic writes ----------------------------------------------------------------
def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible until the end
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_text_mode(tmp_path):
    with atomic_write(tmp_path / "t.md", "w") as f:
        f.write("µ table\n")
    assert (tmp_path / "t.md").read_text(encoding="utf-8") == "µ table\n"


def test_atomic_write_failure_leaves_nothing_and_keeps_old_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "new.npz") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    (tmp_path / "old.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "old.txt", "w") as f:
            f.write("partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["old.txt"]
    assert (tmp_path / "old.txt").read_text() == "keep"


def test_atomic_write_gives_the_mode_open_gives(tmp_path):
    with open(tmp_path / "plain", "wb"):
        pass
    with atomic_write(tmp_path / "atomic") as f:
        f.write(b"x")
    mode = stat.S_IMODE
    assert mode(os.stat(tmp_path / "atomic").st_mode) == mode(os.stat(tmp_path / "plain").st_mode)


def test_atomic_write_into_missing_folder_is_a_data_error(tmp_path):
    target = tmp_path / "nope" / "out.onnx"
    with pytest.raises(DataError, match=f"cannot write {target}"):
        with atomic_write(target) as f:
            f.write(b"x")
    with pytest.raises(DataError, match=f"cannot write {target}: folder {target.parent} does not exist"):
        check_destination(target)
    check_destination(tmp_path / "fine.onnx")


# ---- config -----------------------------------------------------------------------
def write(tmp_path, text: str):
    path = tmp_path / "layers.toml"
    path.write_text(text)
    return path


def test_config_parses_per_layer_bits(tmp_path):
    path = write(tmp_path, '[layers."/conv1/Conv"]\nweight_bits = 4\nact_bits = 6\n'
                           "[layers.fc]\nweight_bits = 2\n")
    assert load_config(path) == {"/conv1/Conv": LayerOverride(weight_bits=4, act_bits=6),
                                 "fc": LayerOverride(weight_bits=2)}


def test_empty_config_has_no_overrides(tmp_path):
    assert load_config(write(tmp_path, "")) == {}


@pytest.mark.parametrize("text, words", [
    ("[layer.fc]\nweight_bits = 4\n", ["unknown key 'layer'"]),
    ("[layers.fc]\nweigth_bits = 4\n", ['[layers."fc"]', "unknown key 'weigth_bits'", "weight_bits, act_bits"]),
    ("[layers.fc]\nweight_bits = 1\n", ['[layers."fc"] weight_bits', "from 2 to 16", "not 1"]),
    ("[layers.fc]\nact_bits = 17\n", ['[layers."fc"] act_bits', "not 17"]),
    ("[layers.fc]\nact_bits = \"8\"\n", ["act_bits", "not '8'"]),
    ("[layers.fc]\nact_bits = 8.0\n", ["act_bits", "not 8.0"]),
    ("[layers.fc]\nact_bits = true\n", ["act_bits", "not True"]),
    ("layers = 3\n", ["'layers' must be a table"]),
    ("[layers]\nfc = 4\n", ['[layers."fc"] must be a table']),
    ("[layers.fc\nweight_bits = 4\n", ["not valid TOML"]),
])
def test_bad_config_names_file_and_key(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for word in words:
        assert word in message, message


def test_missing_or_binary_config(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="bin.toml: "):
        load_config(tmp_path / "bin.toml")
