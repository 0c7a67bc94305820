"""Calibration: streamed statistics against onnxruntime run once on all data, and the range
methods against plain references (numpy percentiles, a loop-by-loop TensorRT entropy search,
the empirical squared error of actually quantizing the samples)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quant.calibrate import Range, activation_stats, calibrate
from quant.errors import DataError
from quant.onnx_import import load_model
from quant.options import CalibMethod
from quant.ranges import TensorStats, entropy_threshold, mse_threshold, tensor_range

MODELS = Path(__file__).parent / "models"
HIST_METHODS = [CalibMethod.PERCENTILE, CalibMethod.ENTROPY, CalibMethod.MSE]


# ---- test graphs and the onnxruntime reference ----------------------------------------

def _conv_model() -> onnx.ModelProto:
    """x -> Conv -> Relu -> Flatten -> Gemm -> logits -> ArgMax (int64, not quantized)."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.normal(size=(3, 144)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
             helper.make_node("Flatten", ["relu"], ["flat"], name="flat"),
             helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"], name="fc", transB=1),
             helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0)]
    graph = helper.make_graph(
        nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _elementwise_model(width: int) -> onnx.ModelProto:
    """x -> Mul(2) -> y -> Relu -> r: every value is known exactly from x."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    nodes = [helper.make_node("Mul", ["x", "two"], ["y"], name="mul"),
             helper.make_node("Relu", ["y"], ["r"], name="relu")]
    graph = helper.make_graph(
        nodes, "elementwise", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", width])], [two])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _graph(model: onnx.ModelProto, tmp_path: Path):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    return load_model(path)


def _all_tensors(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime on all samples at once, every node output exposed (the reference);
    Constant nodes make constants, not activations."""
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    del exposed.graph.output[:]
    names = [out for node in model.graph.node if node.op_type != "Constant" for out in node.output]
    exposed.graph.output.extend(known[name] for name in names)
    session = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
    return {"x": x} | dict(zip(names, session.run(names, {"x": x})))


@pytest.fixture(scope="module")
def conv_data() -> np.ndarray:
    return np.random.default_rng(2).normal(size=(50, 1, 6, 6)).astype(np.float32)


# ---- pass 1: min / max ----------------------------------------------------------------

def test_minmax_equals_numpy_over_all_data(tmp_path, conv_data):
    ranges = calibrate(_graph(_conv_model(), tmp_path), conv_data, batch_size=16, progress=False)
    reference = _all_tensors(_conv_model(), conv_data)
    floats = [name for name, a in reference.items() if a.dtype == np.float32]
    assert list(ranges) == floats == ["x", "conv", "relu", "flat", "logits"]
    for name in floats:
        a = reference[name]
        want = (min(float(a.min()), 0.0), max(float(a.max()), 0.0))
        assert (ranges[name].low, ranges[name].high) == pytest.approx(want, rel=1e-6), name
    assert ranges["relu"].low == 0.0


def test_minmax_range_always_contains_zero(tmp_path):
    x = np.random.default_rng(3).uniform(1.0, 2.0, size=(20, 8)).astype(np.float32)
    ranges = calibrate(_graph(_elementwise_model(8), tmp_path), x, progress=False)
    assert ranges["x"] == Range(0.0, float(x.max()))
    assert ranges["y"] == Range(0.0, float((2 * x).max()))


def test_minmax_on_zoo_model_skips_integer_tensors(tmp_path):
    model = onnx.load(MODELS / "cnn_bn.onnx")
    x = np.load(MODELS.parent.parent / "models" / "digits_calib.npz")["x"][:40]
    ranges = calibrate(load_model(MODELS / "cnn_bn.onnx"), x, batch_size=16, progress=False)
    reference = _all_tensors(model, x)
    floats = {name for name, a in reference.items() if a.dtype.kind == "f"}
    assert set(ranges) == floats and len(floats) < len(reference)
    for name in floats:
        assert ranges[name].low == pytest.approx(min(float(reference[name].min()), 0.0), abs=1e-5)
        assert ranges[name].high == pytest.approx(max(float(reference[name].max()), 0.0), abs=1e-5)


# ---- pass 2: streamed histograms --------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_statistics_do_not_depend_on_batch_size(tmp_path, conv_data, batch_size):
    graph = _graph(_conv_model(), tmp_path)
    whole = activation_stats(graph, conv_data, batch_size=len(conv_data), progress=False, bins=64)
    split = activation_stats(graph, conv_data, batch_size=batch_size, progress=False, bins=64)
    assert list(whole) == list(split)
    for name, s in whole.items():
        t = split[name]
        assert (s.low, s.high, s.zeros) == (t.low, t.high, t.zeros), name
        np.testing.assert_array_equal(s.counts, t.counts, err_msg=name)


def test_histogram_counts_every_value(tmp_path, conv_data):
    stats = activation_stats(_graph(_conv_model(), tmp_path), conv_data, batch_size=16,
                             progress=False, bins=32)
    reference = _all_tensors(_conv_model(), conv_data)
    for name, s in stats.items():
        a = np.abs(reference[name].astype(np.float64))
        assert s.edges[-1] == pytest.approx(a.max(), rel=1e-6)
        assert s.counts.sum() == a.size
        assert s.zeros == np.count_nonzero(a == 0)
        want, _ = np.histogram(a, 32, range=(0.0, s.amax))
        assert np.abs(s.counts - want).sum() <= 2, name  # float32 vs float64 at bin edges


# ---- range methods -----------------------------------------------------------------------

def _laplace(n: int, outlier: float | None = None, seed: int = 4) -> np.ndarray:
    x = np.random.default_rng(seed).laplace(size=(n, 100)).astype(np.float32)
    if outlier is not None:
        x[0, 0] = outlier
    return x


@pytest.mark.parametrize("percentile", [90.0, 99.0, 99.99])
def test_percentile_within_one_bin_of_numpy(tmp_path, percentile):
    x = _laplace(200)
    ranges = calibrate(_graph(_elementwise_model(100), tmp_path), x, CalibMethod.PERCENTILE,
                       progress=False, percentile=percentile, bins=512)
    for name, values in (("x", x), ("y", 2 * x), ("r", np.maximum(2 * x, 0))):
        a = np.abs(values.astype(np.float64))
        want = np.percentile(a, percentile)
        width = a.max() / 512
        assert abs(ranges[name].high - want) <= width, name
        if name == "r":
            assert ranges[name].low == 0.0
        else:
            assert abs(-ranges[name].low - want) <= width, name


@pytest.mark.parametrize("method, clipped", [
    (CalibMethod.ENTROPY, ["x", "y", "r"]),
    # with 255 levels rounding is cheap, so the squared error of clipping one sample by 170
    # outweighs it for the ReLU output (checked against the samples in the next MSE test)
    (CalibMethod.MSE, ["x", "y"]),
])
def test_histogram_methods_clip_a_huge_outlier(tmp_path, method, clipped):
    outlier = 100.0  # 7x the largest of the other million Laplace samples
    x = _laplace(10_000, outlier)
    ranges = calibrate(_graph(_elementwise_model(100), tmp_path), x, method, batch_size=2500,
                       progress=False)
    bulk = float(np.percentile(np.abs(x), 99.0))
    scales = {"x": 1.0, "y": 2.0, "r": 2.0}
    for name, scale in scales.items():
        assert 0.0 < ranges[name].high < scale * outlier, name
    for name in clipped:
        assert scales[name] * bulk < ranges[name].high < scales[name] * outlier / 4, name
    assert ranges["r"].low == 0.0 and ranges["x"].low < 0.0


def _stats(values: np.ndarray, bins: int) -> TensorStats:
    amax = float(np.abs(values).max())
    counts, _ = np.histogram(np.abs(values), bins, range=(0.0, amax))
    return TensorStats(float(values.min()), float(values.max()), counts,
                       int(np.count_nonzero(values == 0)))


def _entropy_by_loops(counts: np.ndarray, levels: int) -> int:
    """TensorRT's search written plainly, one threshold at a time; returns the bin index."""
    h = counts.astype(np.float64)
    best, best_i = np.inf, None
    for i in range(levels, len(h) + 1):
        p = h[:i].copy()
        p[-1] += h[i:].sum()
        q = np.zeros(i)
        group = np.arange(i) * levels // i
        for g in range(levels):
            members = group == g
            nonzero = np.count_nonzero(p[members])
            if nonzero:
                mass = h[:i][members].sum() or 1e-4  # an empty group receiving outliers
                q[members] = np.where(p[members] > 0, mass / nonzero, 0.0)
        if h[:i].sum() == 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        with np.errstate(divide="ignore"):
            kl = float(np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0])))
        if kl <= best:
            best, best_i = kl, i
    return best_i


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entropy_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    values = np.abs(rng.standard_t(3, size=20_000))
    counts, _ = np.histogram(values, 300, range=(0.0, values.max()))
    counts[rng.integers(0, 300, size=30)] = 0  # empty bins exercise the smoothing rule
    got = entropy_threshold(counts, 300.0, 16)
    assert got == _entropy_by_loops(counts, 16)  # amax 300 over 300 bins: edge i is i


@pytest.mark.parametrize("signed, steps", [(True, 31), (False, 63)])  # 6 bits
def test_mse_is_the_best_threshold_for_the_actual_samples(signed, steps):
    values = np.random.default_rng(5).laplace(size=20_000)
    values[0] = 40.0
    if not signed:
        values = np.abs(values)
    stats = _stats(values, 256)
    got = tensor_range(stats, CalibMethod.MSE, bits=6).high
    a = np.abs(values)

    def error(t: float) -> float:
        d = t / steps
        return float(np.mean((a - np.minimum(np.floor(a / d + 0.5), steps) * d) ** 2))

    best = min(error(t) for t in stats.edges[1:])
    assert error(got) <= best * 1.02


@pytest.mark.parametrize("method", [CalibMethod.ENTROPY, CalibMethod.MSE])
def test_exact_zeros_do_not_move_the_threshold(method):
    values = np.abs(np.random.default_rng(6).normal(size=5000))
    padded = np.concatenate([values, np.zeros(45_000)])  # a ReLU output: 90% zeros
    assert tensor_range(_stats(padded, 512), method) == tensor_range(_stats(values, 512), method)


@pytest.mark.parametrize("method", HIST_METHODS)
def test_a_skewed_tensor_keeps_its_short_side(method):
    values = np.concatenate([np.random.default_rng(7).exponential(size=10_000), [-0.01]])
    rng = tensor_range(_stats(values, 1024), method)
    assert rng.low == pytest.approx(-0.01) and 0.01 < rng.high <= values.max()


@pytest.mark.parametrize("method", [CalibMethod.MINMAX, *HIST_METHODS])
def test_an_all_zero_tensor_has_an_empty_range(tmp_path, method):
    x = np.zeros((4, 3), np.float32)
    ranges = calibrate(_graph(_elementwise_model(3), tmp_path), x, method, progress=False)
    assert set(ranges.values()) == {Range(0.0, 0.0)}


# ---- user errors ---------------------------------------------------------------------------

def test_zero_samples_raise(tmp_path):
    with pytest.raises(DataError, match="^calibration data for input 'x' has no samples$"):
        calibrate(_graph(_elementwise_model(3), tmp_path), np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 4), np.float32), "does not fit input 'x'"),
    (np.zeros(3, np.float32), "does not fit input 'x'"),
    (np.array([[0.0, np.nan, 1.0]], np.float32), "input 'x' has non-finite values"),
])
def test_bad_samples_raise(tmp_path, x, message):
    with pytest.raises(DataError, match=message):
        calibrate(_graph(_elementwise_model(3), tmp_path), x, progress=False)


def test_non_finite_activation_raises(tmp_path):
    x = np.full((1, 3), 3e38, np.float32)  # 2 * x overflows float32
    with pytest.raises(DataError, match="^tensor 'y' takes non-finite values"):
        calibrate(_graph(_elementwise_model(3), tmp_path), x, progress=False)


def test_nan_in_a_later_batch_raises(tmp_path):
    node = helper.make_node("Log", ["x"], ["log"], name="log")
    graph = helper.make_graph([node], "log",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("log", TensorProto.FLOAT, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)  # log(-1) is NaN, in the second batch
    with pytest.raises(DataError, match="^tensor 'log' takes non-finite values"):
        calibrate(_graph(model, tmp_path), x, batch_size=1, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": CalibMethod.PERCENTILE, "percentile": 0.0}, "percentile must be in"),
    ({"method": CalibMethod.PERCENTILE, "percentile": 100.5}, "percentile must be in"),
    ({"batch_size": 0}, "batch_size must be a positive integer, not 0"),
    ({"bins": 2.5}, "bins must be a positive integer, not 2.5"),
])
def test_bad_options_raise(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        calibrate(_graph(_elementwise_model(3), tmp_path), np.ones((2, 3), np.float32),
                  progress=False, **kwargs)
