"""Models straight from each exporter quantize correctly: torch's legacy exporter at opsets 13
and 17, torch's dynamo exporter (opset 18, weights in an external data file), and skl2onnx.

Each model is exported live here (not read from the committed zoo), quantized through the
whole pipeline, and its integer predictions compared with onnxruntime on the exported file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from quant import evaluate
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from quantized import data_for, predictions
from zoo import nets
from zoo.sklearn_mlp import build_sklearn_mlp


def _agreement(path: Path, name: str) -> float:
    calib, test = data_for(name, "calib"), data_for(name, "test")
    graph = quantize_model(path, calib, QuantOptions(), progress=False)
    out = evaluate.run(graph, evaluate.quantize_input(graph, test.x))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = predictions(session.run(None, {session.get_inputs()[0].name: test.x}))
    return float(np.mean(predictions([out[o] for o in graph.outputs]) == ref))


@pytest.fixture(scope="module")
def trained_cnn():
    return nets.train(nets.build("cnn_bn"), epochs=8)


@pytest.mark.parametrize("opset", [13, 17])
def test_legacy_exporter(tmp_path: Path, trained_cnn, opset: int) -> None:
    path = nets.export_legacy(trained_cnn, tmp_path / "cnn.onnx", opset=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    assert _agreement(path, "cnn_bn") >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("optimize", [True, False])
def test_dynamo_exporter_with_external_data(tmp_path: Path, trained_cnn, optimize: bool) -> None:
    path = tmp_path / "cnn.onnx"
    data = nets.export_dynamo(trained_cnn, path, optimize=optimize)
    assert Path(data).is_file() and Path(data).stat().st_size > 1000
    assert any(t.data_location == onnx.TensorProto.EXTERNAL
               for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    assert _agreement(path, "cnn_bn") >= 0.99


def test_skl2onnx_mlp_label_and_probabilities(tmp_path: Path) -> None:
    path = tmp_path / "mlp.onnx"
    build_sklearn_mlp(path)
    graph = quantize_model(path, data_for("sklearn_mlp", "calib"), QuantOptions(), progress=False)
    assert len(graph.outputs) == 2
    test = data_for("sklearn_mlp", "test")
    out = evaluate.run(graph, evaluate.quantize_input(graph, test.x))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, probs = session.run(None, {session.get_inputs()[0].name: test.x})
    int_label = out[graph.outputs[0]].reshape(-1)
    assert np.mean(int_label == label) >= 0.995
    int_probs = evaluate.dequantize(graph, graph.outputs[1], out[graph.outputs[1]])
    assert np.max(np.abs(int_probs - probs)) < 0.05
