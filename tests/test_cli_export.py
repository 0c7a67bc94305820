"""`intforge export-onnx` and `intforge check`, run as a user runs them (issue 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from cliutil import REPO_ROOT, assert_user_error, intforge, last_json
from quant.export import float_values

TEST = REPO_ROOT / "models" / "digits_test.npz"


@pytest.fixture(scope="module")
def int_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "gated.int.onnx"
    result = intforge("quantize", REPO_ROOT / "tests" / "models" / "gated.onnx",
                      "--calib", REPO_ROOT / "models" / "digits_calib.npz", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def test_export_writes_a_float_free_checked_model(int_model, tmp_path):
    out = tmp_path / "gated.export.onnx"
    result = intforge("export-onnx", int_model, "-o", out)
    assert result.returncode == 0, result.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert not float_values(model)
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx"}


def test_check_reports_zero_mismatches_on_every_layer(int_model):
    result = intforge("check", int_model, "--data", TEST, "--layers", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = last_json(result.stdout)
    assert report["mismatches"] == 0 and report["samples"] == 360
    assert report["tensors"] > 5 and report["checked"] > 360 * 10


@pytest.mark.parametrize("case", ["float model", "corrupt", "missing"])
def test_bad_integer_model_exits_2_without_output(tmp_path, case):
    bad = {"float model": REPO_ROOT / "models" / "digits_cnn.onnx",
           "corrupt": tmp_path / "corrupt.onnx", "missing": tmp_path / "missing.onnx"}[case]
    if case == "corrupt":
        bad.write_bytes(b"\x00garbage" * 10)
    out = tmp_path / "out.onnx"
    assert_user_error(intforge("export-onnx", bad, "-o", out), bad.name)
    assert_user_error(intforge("check", bad, "--data", TEST), bad.name)
    assert not out.exists() and list(tmp_path.iterdir()) == ([bad] if case == "corrupt" else [])


def test_check_refuses_data_of_the_wrong_shape(int_model, tmp_path):
    data = tmp_path / "wrong.npz"
    np.savez(data, x=np.zeros((3, 64), np.float32))
    assert_user_error(intforge("check", int_model, "--data", data), "wrong.npz", "shape")
