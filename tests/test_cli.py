"""The `intforge` command, run as a user runs it: in a subprocess, judged by exit code,
stdout, stderr and the files it leaves.

Bad input must give exit code 2, exactly one stderr line `intforge: error: ...` naming the
file or problem, no traceback, and no output file. The happy path runs every command on the
bundled digits CNN and checks its numbers against independent references (onnxruntime on
the original model, quantization and SQNR recomputed here from their formulas).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cliutil import REPO_ROOT, assert_user_error, intforge, last_json

MODEL = REPO_ROOT / "models" / "digits_cnn.onnx"
CALIB = REPO_ROOT / "models" / "digits_calib.npz"
TEST = REPO_ROOT / "models" / "digits_test.npz"


# ---- bad input ----------------------------------------------------------------------
def _garbage(path: Path) -> Path:
    path.write_bytes(b"\x08\x96\x01 definitely not an onnx model \xff" * 20)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


X = np.zeros((4, 1, 8, 8), np.float32)
QUANTIZE_ERRORS = [  # (model, calib, extra args) makers over tmp_path; words in the message
    pytest.param(lambda t: t / "none.onnx", lambda t: CALIB, [], ["none.onnx"], id="missing-model"),
    pytest.param(lambda t: _garbage(t / "garbage.onnx"), lambda t: CALIB, [], ["garbage.onnx"],
                 id="garbage-model"),
    pytest.param(lambda t: MODEL, lambda t: t / "none.npz", [], ["none.npz", "no such file"],
                 id="missing-data"),
    pytest.param(lambda t: MODEL, lambda t: _npz(t / "nox.npz", images=X), [],
                 ["nox.npz", "no array named 'x'"], id="data-without-x"),
    pytest.param(lambda t: MODEL, lambda t: _npz(t / "nan.npz", x=np.where(X == 0, np.nan, X)), [],
                 ["nan.npz", "NaN"], id="nan-data"),
    pytest.param(lambda t: MODEL, lambda t: _npz(t / "flat.npz", x=X.reshape(4, 64)), [],
                 ["flat.npz", "samples of shape 64", "expects 1x8x8"], id="data-shape"),
    pytest.param(lambda t: MODEL, lambda t: CALIB, ["--weight-bits", "1"],
                 ["--weight-bits", "from 2 to 16", "'1'"], id="weight-bits-1"),
    pytest.param(lambda t: MODEL, lambda t: CALIB, ["--weight-bits", "17"],
                 ["--weight-bits", "'17'"], id="weight-bits-17"),
    pytest.param(lambda t: MODEL, lambda t: CALIB, ["--act-bits", "eight"], ["--act-bits", "'eight'"],
                 id="act-bits-text"),
    pytest.param(lambda t: MODEL, lambda t: CALIB, ["--calibration", "magic"],
                 ["--calibration", "invalid choice: 'magic'", "minmax"], id="unknown-calibration"),
    pytest.param(lambda t: MODEL, lambda t: CALIB, ["--config", "missing.toml"],
                 ["missing.toml", "no such file"], id="missing-config"),
]


@pytest.mark.parametrize("model, calib, extra, words", QUANTIZE_ERRORS)
def test_quantize_bad_input_exits_2_without_output(tmp_path, model, calib, extra, words):
    out = tmp_path / "out.onnx"
    result = intforge("quantize", model(tmp_path), "--calib", calib(tmp_path), "-o", out, *extra,
                      cwd=tmp_path)
    assert_user_error(result, *words)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.onnx")]


def test_missing_required_option_and_command_are_usage_errors(tmp_path):
    assert_user_error(intforge("quantize", MODEL, "-o", tmp_path / "o.onnx"), "--calib")
    assert_user_error(intforge(), "COMMAND")
    assert_user_error(intforge("frobnicate"), "invalid choice: 'frobnicate'")
    assert not (tmp_path / "o.onnx").exists()


def test_eval_bad_inputs(tmp_path):
    assert_user_error(intforge("eval", tmp_path / "none.onnx", "--data", TEST), "none.onnx", "no such file")
    assert_user_error(intforge("eval", _garbage(tmp_path / "g.onnx"), "--data", TEST), "g.onnx",
                      "not an ONNX model")
    assert_user_error(intforge("eval", MODEL, "--data", tmp_path / "none.npz"), "none.npz")


def test_eval_checks_data_against_the_model_input(zoo_path):
    mlp = zoo_path("sklearn_mlp")  # input (N, 64), the digits files are (N, 1, 8, 8)
    assert_user_error(intforge("eval", mlp, "--data", TEST), "digits_test.npz", "samples of shape 1x8x8",
                      "expects 64")


def test_integer_commands_refuse_a_float_model(tmp_path):
    for args in (("inspect", MODEL), ("run", MODEL, "--data", TEST, "-o", tmp_path / "o.npz"),
                 ("compare", MODEL, MODEL, "--data", TEST)):
        assert_user_error(intforge(*args), "digits_cnn.onnx")
    assert not (tmp_path / "o.npz").exists()


# ---- float evaluation (onnxruntime on the original file) -----------------------------
def _ort_outputs(model: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def test_eval_float_matches_onnxruntime(digits_test):
    result = intforge("eval", MODEL, "--data", TEST, "--json")
    assert result.returncode == 0, result.stderr
    expected = float(np.mean(_ort_outputs(MODEL, digits_test.x)[0].argmax(1) == digits_test.y))
    report = last_json(result.stdout)
    assert report["n"] == 360 and report["kind"] == "float"
    assert report["accuracy"] == pytest.approx(expected, abs=1e-12)


def test_eval_label_output_and_no_labels(tmp_path, zoo_path, digits_test):
    """sklearn's MLP outputs labels first (int64), then probabilities."""
    mlp = zoo_path("sklearn_mlp")
    x = digits_test.x.reshape(-1, 64)
    labels = _ort_outputs(mlp, x)[0]
    with_y = intforge("eval", mlp, "--data", _npz(tmp_path / "y.npz", x=x, y=digits_test.y), "--json")
    assert last_json(with_y.stdout)["accuracy"] == pytest.approx(float(np.mean(labels == digits_test.y)))
    no_y = intforge("eval", mlp, "--data", _npz(tmp_path / "noy.npz", x=x), "--json")
    assert no_y.returncode == 0, no_y.stderr
    report = last_json(no_y.stdout)
    assert (report["kind"], report["n"], report["accuracy"], report["correct"]) == ("float", 360, None, None)


# ---- the whole flow on the digits CNN ----------------------------------------------
@pytest.fixture(scope="module")
def int_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow") / "digits_w8a8.onnx"
    result = intforge("quantize", MODEL, "--calib", CALIB, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: ")
    return out


@pytest.mark.parametrize("hash_seed", ["0", "12345"])
def test_quantize_is_deterministic(int_model, tmp_path, hash_seed):
    """Same model, data and options: the same bytes, in another process with another hash seed
    (no dependence on set or dict iteration order)."""
    again = tmp_path / "again.onnx"
    assert intforge("quantize", MODEL, "--calib", CALIB, "-o", again, hash_seed=hash_seed).returncode == 0
    assert again.read_bytes() == int_model.read_bytes()


def test_quantize_options_reach_the_model(tmp_path):
    from quant import intfile, ir

    config = tmp_path / "layers.toml"
    config.write_text('[layers."/conv1/Conv"]\nweight_bits = 3\n')
    out = tmp_path / "w4a6.onnx"
    result = intforge("quantize", MODEL, "--calib", CALIB, "-o", out, "--weight-bits", "4",
                      "--act-bits", "6", "--scale", "pow2", "--per-tensor", "--calibration",
                      "percentile", "--config", config)
    assert result.returncode == 0, result.stderr
    graph = intfile.load(out)
    hidden = {name: spec for name, spec in graph.tensors.items() if name not in graph.outputs}
    assert {spec.itype.bits for spec in hidden.values()} == {6}  # outputs may keep more bits
    weighted = [op for op in graph.ops if isinstance(op, (ir.Conv, ir.Gemm))]
    assert "/conv1/Conv" in {op.name for op in weighted} and len(weighted) == 4
    for op in weighted:
        bits = 3 if op.name == "/conv1/Conv" else 4
        # symmetric; a pow2 scale rounds up by less than 2x, so the largest |w| is over half of qmax
        assert 2 ** (bits - 2) <= np.abs(op.weight).max() <= 2 ** (bits - 1) - 1, op.name
        multipliers = op.requant.multiplier.tolist()
        assert all(m > 0 and m & (m - 1) == 0 for m in multipliers), op.name  # pow2: shifts only
        assert len(set(op.requant.shift.tolist())) == 1, op.name  # per tensor: one scale


def test_quantize_unwritable_output_leaves_nothing(tmp_path):
    result = intforge("quantize", MODEL, "--calib", CALIB, "-o", tmp_path / "nope" / "out.onnx")
    assert_user_error(result, "nope/out.onnx")
    assert not (tmp_path / "nope").exists()


def test_eval_integer_model(int_model):
    result = intforge("eval", int_model, "--data", TEST, "--json")
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert report["kind"] == "integer" and report["n"] == 360
    float_acc = last_json(intforge("eval", MODEL, "--data", TEST, "--json").stdout)["accuracy"]
    assert report["accuracy"] >= float_acc - 0.03  # W8A8 keeps the digits CNN's accuracy


def _input_qparams(model: Path) -> tuple[float, int, int, int]:
    from quant import intfile

    spec = intfile.load(model).input_spec
    return spec.qparams.scale, spec.qparams.zero_point, spec.itype.qmin, spec.itype.qmax


def test_run_writes_integer_vectors(int_model, tmp_path, digits_test):
    out = tmp_path / "vectors.npz"
    result = intforge("run", int_model, "--data", TEST, "-o", out)
    assert result.returncode == 0, result.stderr
    with np.load(out) as vectors:
        assert sorted(vectors.files) == ["xq", "yq"]
        xq, yq = vectors["xq"], vectors["yq"]
    scale, zero, qmin, qmax = _input_qparams(int_model)
    expected = np.clip(np.floor(digits_test.x.astype(np.float64) / scale + 0.5) + zero, qmin, qmax)
    np.testing.assert_array_equal(xq, expected)
    assert yq.shape == (360, 10) and np.issubdtype(yq.dtype, np.integer)
    int_acc = last_json(intforge("eval", int_model, "--data", TEST, "--json").stdout)["accuracy"]
    assert float(np.mean(yq.argmax(1) == digits_test.y)) == pytest.approx(int_acc)


def test_compare_json_and_report(int_model, tmp_path, digits_test):
    report_dir = tmp_path / "report"
    result = intforge("compare", MODEL, int_model, "--data", TEST, "--json", "--report", report_dir)
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    float_pred = _ort_outputs(MODEL, digits_test.x)[0].argmax(1)
    assert report["float_accuracy"] == pytest.approx(float(np.mean(float_pred == digits_test.y)))
    assert 0.9 <= report["agreement"] <= 1.0
    layers = report["layers"]
    assert len(layers) >= 5
    for layer in layers:
        assert layer["max_abs_error"] >= 0 and (layer["sqnr_db"] is None or layer["sqnr_db"] > 0)

    # the output layer's numbers, recomputed from onnxruntime's logits and the integer outputs
    from quant import intfile

    graph = intfile.load(int_model)
    vectors = tmp_path / "v.npz"
    assert intforge("run", int_model, "--data", TEST, "-o", vectors).returncode == 0
    qp = graph.tensors[graph.outputs[0]].qparams
    with np.load(vectors) as v:
        approx = (v["yq"].astype(np.float64) - qp.zero_point) * qp.scale
    logits = _ort_outputs(MODEL, digits_test.x)[0].astype(np.float64)
    (out_layer,) = [l for l in layers if l["name"] == graph.outputs[0]]
    noise = np.sum((logits - approx) ** 2)
    assert out_layer["sqnr_db"] == pytest.approx(10 * math.log10(np.sum(logits ** 2) / noise), abs=1e-3)
    assert out_layer["max_abs_error"] == pytest.approx(np.max(np.abs(logits - approx)), abs=1e-4)
    assert report["agreement"] == pytest.approx(float(np.mean(approx.argmax(1) == float_pred)))

    pngs = sorted((report_dir / "ranges").glob("*.png"))
    assert len(pngs) == len(layers)
    for png in [report_dir / "sqnr.png", *pngs]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = (report_dir / "index.md").read_text()
    assert "sqnr.png" in index and all(f"ranges/{p.name}" in index for p in pngs)


def _conv_gemm_macs(model: Path) -> int:
    """MACs per sample from ONNX shape inference on the float model (independent of intforge):
    a Conv output element costs C_in/group*kh*kw, a Gemm output element K."""
    m = onnx.shape_inference.infer_shapes(onnx.load(str(model)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*m.graph.value_info, *m.graph.output]}
    weights = {t.name: list(t.dims) for t in m.graph.initializer}
    total = 0
    for node in m.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w = weights[node.input[1]]
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        per_output = math.prod(w[1:]) if node.op_type == "Conv" else w[1] if trans_b else w[0]
        total += math.prod(shapes[node.output[0]][1:]) * per_output
    return total


def test_inspect_lists_every_op_and_total_macs(int_model):
    from quant import intfile

    result = intforge("inspect", int_model)
    assert result.returncode == 0, result.stderr
    for op in intfile.load(int_model).ops:
        assert op.name in result.stdout
    assert f"{_conv_gemm_macs(MODEL):,}" in result.stdout


def test_demo_writes_model_and_report(tmp_path):
    result = intforge("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "digits_cnn_w8a8.onnx").is_file()
    assert (tmp_path / "demo" / "report" / "index.md").is_file()
    for row in ("float accuracy", "integer accuracy", "argmax agreement", "MACs per sample"):
        assert row in result.stdout


def test_model_with_label_and_probability_outputs(tmp_path, zoo_path, digits_calib, digits_test):
    """sklearn's MLP: outputs `label` (one int per sample) then `probabilities`."""
    mlp = zoo_path("sklearn_mlp")
    calib = _npz(tmp_path / "calib.npz", x=digits_calib.x.reshape(-1, 64))
    test = _npz(tmp_path / "test.npz", x=digits_test.x.reshape(-1, 64), y=digits_test.y)
    int_mlp = tmp_path / "mlp_int.onnx"
    assert intforge("quantize", mlp, "--calib", calib, "-o", int_mlp).returncode == 0
    vectors = tmp_path / "v.npz"
    assert intforge("run", int_mlp, "--data", test, "-o", vectors).returncode == 0
    with np.load(vectors) as v:
        assert sorted(v.files) == ["xq", "yq0", "yq1"]
        int_labels, int_probs = v["yq0"], v["yq1"]
    assert int_labels.shape == (360,) and int_probs.shape == (360, 10)
    report = last_json(intforge("compare", mlp, int_mlp, "--data", test, "--json").stdout)
    float_labels = _ort_outputs(mlp, digits_test.x.reshape(-1, 64))[0]
    assert report["float_accuracy"] == pytest.approx(float(np.mean(float_labels == digits_test.y)))
    assert report["int_accuracy"] == pytest.approx(float(np.mean(int_labels == digits_test.y)))
    assert report["agreement"] == pytest.approx(float(np.mean(int_labels == float_labels)))
    assert report["agreement"] >= 0.97
    assert "probabilities" in {layer["name"] for layer in report["layers"]}


# ---- the small pure helpers, against hand-computed values -----------------------------
def test_sqnr_by_hand():
    from intforge_cli.comparison import sqnr_db

    reference = np.array([1.0, 2.0])
    assert sqnr_db(reference, np.array([1.0, 1.0])) == pytest.approx(10 * math.log10(5.0))
    assert sqnr_db(reference, np.array([3.0, 0.0])) == pytest.approx(10 * math.log10(5.0 / 8.0))
    assert sqnr_db(reference, reference) == math.inf
    assert sqnr_db(np.zeros(2), np.ones(2)) == -math.inf


def test_labels_from_scores_and_label_outputs():
    from intforge_cli.models import labels

    scores = np.array([[0.1, 0.7, 0.2], [5.0, -1.0, 5.0]])
    np.testing.assert_array_equal(labels(scores), [1, 0])  # ties: the first maximum
    np.testing.assert_array_equal(labels(scores.reshape(2, 3, 1, 1)), [1, 0])  # N x C x 1 x 1
    np.testing.assert_array_equal(labels(np.array([7, 2])), [7, 2])  # already labels
    np.testing.assert_array_equal(labels(np.array([[4], [9]])), [4, 9])


def test_json_line_turns_infinities_into_null(capsys):
    from intforge_cli.output import print_json

    print_json({"layers": [{"sqnr_db": math.inf}, {"sqnr_db": 1.5}], "n": 2})
    assert json.loads(capsys.readouterr().out) == {"layers": [{"sqnr_db": None}, {"sqnr_db": 1.5}], "n": 2}
