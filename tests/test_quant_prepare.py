"""prepare on whole models, and the float runner.

Every zoo model and the bundled digits model, prepared, must compute what onnxruntime
computes on the ORIGINAL ONNX file (relative error <= 1e-5 on the digits test split) while
containing none of the operators prepare exists to remove.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from quant.data import Dataset
from quant.errors import ModelError
from quant.float_run import FloatSession, run_float
from quant.graph import Graph
from quant.onnx_import import load_model
from quant.prepare import prepare

REPO = Path(__file__).resolve().parents[1]
MODELS = {name: REPO / "tests" / "models" / f"{name}.onnx"
          for name in ("mlp", "cnn_bn", "resnet_gap", "dwsep", "gated", "sklearn_mlp")}
MODELS["digits_cnn"] = REPO / "models" / "digits_cnn.onnx"

REMOVED = {"BatchNormalization", "Dropout", "Identity", "Flatten", "Squeeze", "Unsqueeze", "Shape",
           "Sub", "Div", "MatMul", "ReduceMean", "Pad", "Constant", "Relu", "Clip"}
"""Never left in a prepared zoo model (Relu and Clip all fuse into their producers here)."""


def features(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Digits images as the model's input: (N,1,8,8), or (N,64) for the sklearn model."""
    return x.reshape(len(x), *graph.input.shape[1:])


def reference(path: Path, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """onnxruntime (default options) on the original file, optionally exposing `outputs` too."""
    model = onnx.load(str(path))
    for name in outputs or []:
        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))


def assert_close(got: np.ndarray, ref: np.ndarray, what: str, rel: float = 1e-5) -> None:
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    err = np.abs(got.astype(np.float64) - ref).max()
    assert err <= rel * np.abs(ref).max(), f"{what}: max |diff| {err:.3g}, max |ref| {np.abs(ref).max():.3g}"


@pytest.fixture(scope="module", params=list(MODELS))
def zoo(request: pytest.FixtureRequest) -> tuple[str, Graph, Graph]:
    """(name, loaded graph, prepared graph) per model."""
    graph = load_model(MODELS[request.param])
    return request.param, graph, prepare(graph)


def test_prepared_model_matches_the_original(zoo: tuple[str, Graph, Graph], digits_test: Dataset) -> None:
    name, graph, prepared = zoo
    x = features(graph, digits_test.x)
    ref = reference(MODELS[name], x)
    got = run_float(prepared, x)
    assert prepared.output_names() == list(ref) and prepared.input == graph.input
    for out in ref:
        assert_close(got[out], ref[out], f"{name}: output '{out}'")


def test_prepared_model_is_in_canonical_form(zoo: tuple[str, Graph, Graph]) -> None:
    name, _, prepared = zoo
    left = sorted(REMOVED & {n.op for n in prepared.nodes})
    assert not left, f"{name}: prepare left {left}"
    for node in prepared.nodes:
        if node.op == "Gemm":
            a = node.attrs
            assert (a.get("transA", 0), a.get("transB", 0), a.get("alpha", 1.0), a.get("beta", 1.0)) == (0, 1, 1, 1)
            assert prepared.constants[node.inputs[2]].shape == (prepared.constants[node.inputs[1]].shape[0],)
        if node.op == "Reshape":
            assert prepared.constants[node.inputs[1]][0] == -1


def test_prepare_is_idempotent(zoo: tuple[str, Graph, Graph]) -> None:
    name, _, prepared = zoo
    again = prepare(prepared)
    assert [(n.op, n.inputs, n.outputs, n.activation) for n in again.nodes] == \
        [(n.op, n.inputs, n.outputs, n.activation) for n in prepared.nodes], name


def test_prepare_leaves_its_input_alone(zoo: tuple[str, Graph, Graph]) -> None:
    name, graph, _ = zoo
    fresh = load_model(MODELS[name])
    assert [(n.op, n.inputs, n.outputs) for n in graph.nodes] == [(n.op, n.inputs, n.outputs) for n in fresh.nodes]
    assert graph.constants.keys() == fresh.constants.keys()


def test_prepared_nodes_are_topologically_sorted(zoo: tuple[str, Graph, Graph]) -> None:
    _, _, prepared = zoo
    known = {prepared.input.name, *prepared.constants}
    for node in prepared.nodes:
        assert all(name in known for name in node.inputs if name), node
        known.update(node.outputs)


def test_fused_activations_match_the_original_relu(digits_test: Dataset) -> None:
    """The CNN's first ReLU is fused into its Conv; the Conv node's output is the ReLU's
    tensor, and onnxruntime sees the fused clamp (`Graph.to_onnx` writes it as a Clip)."""
    path = MODELS["cnn_bn"]
    prepared = prepare(load_model(path))
    relu = "/Relu_output_0"
    conv = next(n for n in prepared.nodes if relu in n.outputs)
    assert conv.op == "Conv" and conv.activation is not None
    x = digits_test.x[:50]
    assert_close(run_float(prepared, x, [relu])[relu], reference(path, x, [relu])[relu], relu)
    bn = "/bn1/BatchNormalization_output_0"  # the folded Conv+BN before its clamp
    assert_close(run_float(prepared, x, [conv.preactivation])[conv.preactivation],
                 reference(path, x, [bn])[bn], conv.preactivation)


# ---- float runner ----------------------------------------------------------------------
def test_run_float_batches_and_exposes_intermediates(digits_test: Dataset) -> None:
    path = MODELS["digits_cnn"]
    graph = load_model(path)
    inner = graph.nodes[3].outputs[0]
    x = digits_test.x[:23]
    got = run_float(graph, x, [inner, "logits", "x"], batch_size=5)
    ref = reference(path, x, [inner])
    assert list(got) == [inner, "logits", "x"]
    assert_close(got[inner], ref[inner], inner, rel=1e-6)
    assert_close(got["logits"], ref["logits"], "logits", rel=1e-6)
    np.testing.assert_array_equal(got["x"], x)


def test_float_session_is_reusable(digits_test: Dataset) -> None:
    graph = load_model(MODELS["mlp"])
    session = FloatSession(graph)
    x = digits_test.x
    first, second = session(x[:10]), session(x[10:30])
    whole = run_float(graph, x[:30])
    np.testing.assert_allclose(np.concatenate([first["logits"], second["logits"]]), whole["logits"],
                               rtol=1e-6, atol=1e-6)


def test_run_float_rejects_unknown_tensor() -> None:
    graph = load_model(MODELS["mlp"])
    with pytest.raises(ModelError, match="^graph '.*': tensor 'nope' is not computed by any node$"):
        FloatSession(graph, ["nope"])


# ---- a torch export of the newer kind (opset 18, weights in external data) -------------
@pytest.mark.slow
@pytest.mark.parametrize("net", ["resnet_gap", "cnn_bn", "mlp"])
def test_dynamo_export_prepares(net: str, tmp_path: Path, digits_test: Dataset) -> None:
    from zoo import nets

    path = tmp_path / f"{net}.onnx"
    nets.export_dynamo(nets.build(net), path)
    prepared = prepare(load_model(path))
    left = sorted(REMOVED & {n.op for n in prepared.nodes})
    assert not left, f"{net}: prepare left {left}"
    x = digits_test.x[:64]
    assert_close(run_float(prepared, x)["logits"], reference(path, x)["logits"], net)
