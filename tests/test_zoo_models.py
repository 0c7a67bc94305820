"""Sanity checks of the committed float models and data (no quantizer involved).

* ``models/digits_cnn.onnx`` + ``models/digits_{calib,test}.npz`` (bundled default)
* ``tests/models/*.onnx`` (test zoo, built by ``tests/zoo/build_zoo.py``)
* live exports with ``tests/zoo/nets.py`` (legacy and dynamo/external data)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
ZOO_DIR = TESTS_DIR / "models"
MODELS_DIR = REPO_ROOT / "models"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

ZOO = ["mlp", "cnn_bn", "resnet_gap", "dwsep", "gated", "sklearn_mlp"]
EXPECTED_OPSET = {"cnn_bn": 17}


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    d = np.load(MODELS_DIR / "digits_test.npz")
    return d["x"], d["y"]


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _scores(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    inp = sess.get_inputs()[0]
    if len(inp.shape) == 2:  # sklearn model: flattened features
        x = x.reshape(len(x), -1)
    outs = sess.run(None, {inp.name: np.ascontiguousarray(x, dtype=np.float32)})
    return outs[-1]  # logits / probabilities (sklearn: (label, probabilities))


def test_digits_npz_files(test_split):
    x, y = test_split
    c = np.load(MODELS_DIR / "digits_calib.npz")
    assert x.shape == (360, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (360,) and y.dtype == np.int64
    assert c["x"].shape == (200, 1, 8, 8) and c["x"].dtype == np.float32
    assert c["y"].shape == (200,) and c["y"].dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(10))
    # calibration and test images are disjoint
    test_rows = {r.tobytes() for r in x.reshape(len(x), -1)}
    assert not any(r.tobytes() in test_rows for r in c["x"].reshape(200, -1))


def test_digits_npz_match_split():
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(MODELS_DIR))
    try:
        from digits_data import split_digits
    finally:
        sys.path.remove(str(MODELS_DIR))
    s = split_digits()
    d = np.load(MODELS_DIR / "digits_test.npz")
    c = np.load(MODELS_DIR / "digits_calib.npz")
    np.testing.assert_array_equal(d["x"], s.x_test)
    np.testing.assert_array_equal(d["y"], s.y_test)
    np.testing.assert_array_equal(c["x"], s.x_calib)
    np.testing.assert_array_equal(c["y"], s.y_calib)
    assert len(s.x_train) + len(s.x_test) == 1797


def test_bundled_digits_cnn(test_split):
    path = MODELS_DIR / "digits_cnn.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    m = onnx.load(str(path))
    ops = {n.op_type for n in m.graph.node}
    assert {"BatchNormalization", "Add", "MaxPool", "GlobalAveragePool", "Gemm"} <= ops
    assert m.graph.input[0].name == "x" and m.graph.output[0].name == "logits"
    x, y = test_split
    sess = _session(path)
    acc = float((_scores(sess, x).argmax(1) == y).mean())
    assert acc >= 0.95
    assert sess.run(None, {"x": x[:1]})[0].shape == (1, 10)  # dynamic batch


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model(name, test_split):
    path = ZOO_DIR / f"{name}.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    m = onnx.load(str(path))
    default = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
    assert default == [EXPECTED_OPSET.get(name, 13)]
    x, y = test_split
    sess = _session(path)
    scores = _scores(sess, x)
    acc = float((scores.argmax(1) == y).mean())
    assert acc >= 0.9, acc
    np.testing.assert_allclose(_scores(sess, x[:3]), scores[:3], rtol=1e-5, atol=1e-5)  # dynamic batch
    if name == "gated":
        np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)  # Softmax output


def test_zoo_legacy_keeps_batchnorm():
    for name in ["cnn_bn", "resnet_gap", "dwsep"]:
        m = onnx.load(str(ZOO_DIR / f"{name}.onnx"))
        assert "BatchNormalization" in {n.op_type for n in m.graph.node}, name


def test_dynamo_export_external_data(tmp_path, test_split):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from zoo import nets

    x, _ = test_split
    model = nets.train(nets.build("resnet_gap"), epochs=2)
    path = tmp_path / "resnet_gap_dynamo.onnx"
    data = nets.export_dynamo(model, path)
    assert data == tmp_path / "resnet_gap_dynamo.onnx.data" and data.stat().st_size > 0
    m = onnx.load(str(path), load_external_data=False)
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [18]
    ext = [i for i in m.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    assert ext and all(
        {e.key: e.value for e in i.external_data}["location"] == data.name for i in ext
    )
    onnx.checker.check_model(str(path))  # by path: resolves external data
    sess = _session(path)
    for n in (1, 5, len(x)):
        got = sess.run(None, {"x": x[:n]})[0]
        np.testing.assert_allclose(got, nets.predict(model, x[:n]), rtol=1e-4, atol=1e-4)


def test_legacy_export_live(tmp_path, test_split):
    pytest.importorskip("torch")
    from zoo import nets

    x, _ = test_split
    model = nets.train(nets.build("cnn_bn"), epochs=1)
    path = nets.export_legacy(model, tmp_path / "cnn_bn.onnx", opset=17)
    m = onnx.load(str(path))
    assert {"BatchNormalization", "Pad", "Conv"} <= {n.op_type for n in m.graph.node}
    got = _session(path).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, nets.predict(model, x), rtol=1e-4, atol=1e-4)
