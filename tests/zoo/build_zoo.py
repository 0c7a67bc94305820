"""Build the test model zoo: ``python tests/zoo/build_zoo.py``.

Trains each net of ``zoo.nets`` on the shared digits train split, exports it with
the legacy exporter (opset 13; ``cnn_bn`` at opset 17) to ``tests/models/<name>.onnx``,
builds ``tests/models/sklearn_mlp.onnx`` (skl2onnx), checks every model with
onnx.checker + onnxruntime on ``models/digits_test.npz``, verifies the dynamo
(external data) export of ``resnet_gap`` in a temporary directory, and writes
``tests/models/README.md``.  Deterministic; a few tens of seconds on 2 cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__:
    from . import nets, sklearn_mlp
else:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from zoo import nets, sklearn_mlp

REPO_ROOT = nets.REPO_ROOT
OUT_DIR = REPO_ROOT / "tests" / "models"
TEST_NPZ = REPO_ROOT / "models" / "digits_test.npz"

DESCRIPTIONS = {
    "mlp": "Flatten, Linear(64,64), ReLU, Linear(64,32), ReLU, Linear(32,10)",
    "cnn_bn": "Conv(dilation 2)+BN+ReLU; ZeroPad2d((0,1,0,1)) (Pad) + Conv(stride 2)+BN+ReLU; "
    "MaxPool 2; Flatten; Linear",
    "resnet_gap": "stem Conv+BN+ReLU; 2 residual blocks (Conv+BN+ReLU, Conv+BN, Add, ReLU); "
    "torch.mean over (2,3) keepdim (ReduceMean); Flatten; Linear",
    "dwsep": "stem Conv+BN+ReLU6; depthwise Conv+BN+ReLU6, pointwise Conv+BN+ReLU6 (x2); "
    "AvgPool(2, pad 1, count_include_pad=False); AvgPool(3, stride 2, pad 1, count_include_pad=True); "
    "Flatten; Linear",
    "gated": "Conv+Tanh and Conv+LeakyReLU(0.1) branches, Concat, x*sigmoid(Conv 1x1 gate), "
    "Conv(stride 2)+HardSigmoid, Flatten, Linear, Softmax (output = probabilities)",
    "sklearn_mlp": "sklearn MLPClassifier(hidden=(32,), relu) via skl2onnx, zipmap=False; "
    "input x (N,64) = flattened digits/16",
}


def _load_test() -> tuple[np.ndarray, np.ndarray]:
    if TEST_NPZ.is_file():
        d = np.load(TEST_NPZ)
        return d["x"], d["y"]
    s = nets.digits_split()
    return s.x_test, s.y_test


def _op_summary(model) -> str:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(counts.items()))


def _io_summary(model) -> str:
    import onnx

    def fmt(v) -> str:
        t = v.type.tensor_type
        dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in t.shape.dim]
        return f"`{v.name}` {onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}[{','.join(dims)}]"

    ins = ", ".join(fmt(v) for v in model.graph.input)
    outs = ", ".join(fmt(v) for v in model.graph.output)
    return f"{ins} → {outs}"


def evaluate(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """onnx.checker + onnxruntime accuracy of the model at ``path`` on (x, y)."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    feed = x.reshape(len(x), 64) if inp.shape[-1] == 64 and len(inp.shape) == 2 else x
    outs = sess.run(None, {inp.name: np.ascontiguousarray(feed, dtype=np.float32)})
    scores = outs[-1] if len(outs) > 1 else outs[0]  # sklearn: (label, probabilities)
    return float((scores.argmax(1) == y).mean())


def verify_dynamo(model, x: np.ndarray) -> str:
    """Dynamo-export ``model`` to a temp dir; check external data and parity with torch."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "resnet_gap_dynamo.onnx"
        data = nets.export_dynamo(model, p)
        m = onnx.load(str(p), load_external_data=False)
        ext = [i.name for i in m.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
        assert ext, "no external initializers"
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": x})[0]
        err = float(np.abs(got - nets.predict(model, x)).max())
        assert err < 1e-4, err
        ops = _op_summary(m)
        return (
            f"opset {m.opset_import[0].version}, {len(ext)}/{len(m.graph.initializer)} initializers in "
            f"{data.name} ({data.stat().st_size} B), ops: {ops}, max|ort-torch|={err:.2g}"
        )


def main() -> None:
    import onnx

    t_all = time.perf_counter()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    x_test, y_test = _load_test()
    rows = []
    trained = {}
    for name in nets.NETS:
        t0 = time.perf_counter()
        model = nets.train(nets.build(name))
        trained[name] = model
        path = OUT_DIR / f"{name}.onnx"
        nets.export_legacy(model, path, nets.OPSETS[name])
        acc = evaluate(path, x_test, y_test)
        m = onnx.load(str(path))
        dt = time.perf_counter() - t0
        print(f"{name:12s} opset {nets.OPSETS[name]}  acc {acc:.4f}  {dt:5.1f} s  {path.stat().st_size} B")
        rows.append((name, nets.OPSETS[name], acc, _op_summary(m), _io_summary(m)))

    t0 = time.perf_counter()
    path = OUT_DIR / "sklearn_mlp.onnx"
    sklearn_mlp.build_sklearn_mlp(path)
    acc = evaluate(path, x_test, y_test)
    m = onnx.load(str(path))
    print(f"{'sklearn_mlp':12s} opset {sklearn_mlp.TARGET_OPSET}  acc {acc:.4f}  {time.perf_counter() - t0:5.1f} s")
    print(f"  sklearn_mlp ops: {[n.op_type for n in m.graph.node]}")
    rows.append(("sklearn_mlp", sklearn_mlp.TARGET_OPSET, acc, _op_summary(m), _io_summary(m)))

    bad = [(r[0], r[2]) for r in rows if r[2] < 0.9]
    if bad:
        raise SystemExit(f"accuracy below 0.9: {bad}")

    t0 = time.perf_counter()
    dyn = verify_dynamo(trained["resnet_gap"], x_test)
    print(f"dynamo resnet_gap: {dyn}  ({time.perf_counter() - t0:.1f} s)")

    lines = [
        "# Test model zoo",
        "",
        "Generated by `python tests/zoo/build_zoo.py` (deterministic; do not edit by hand).",
        "All models are trained on the sklearn digits train split (`models/digits_data.py`) and",
        "exported with the legacy TorchScript exporter (`dynamo=False`, eval mode,",
        "`do_constant_folding=False`, so BatchNormalization stays a separate node) with a",
        "dynamic batch axis `N`. Accuracy: onnxruntime on `models/digits_test.npz` (360 images).",
        "",
        "| model | opset | test acc | inputs → outputs |",
        "|---|---|---|---|",
    ]
    for name, opset, acc, _, io in rows:
        lines.append(f"| `{name}.onnx` | {opset} | {acc:.4f} | {io} |")
    lines.append("")
    for name, _, _, ops, _ in rows:
        lines += [f"## {name}", "", DESCRIPTIONS[name], "", f"Op types: {ops}", ""]
    lines += [
        "## Notes",
        "",
        "* `cnn_bn`: the legacy exporter computes the Pad `pads` input with a constant-only",
        "  subgraph (Constant/Shape/Gather/Mul/Sub/Cast/ConstantOfShape/Concat/Reshape/Slice/",
        "  Transpose/Reshape/Cast); it is foldable (all inputs are constants) but not folded.",
        "* `dwsep`: ReLU6 is `Clip` with min/max given by `Constant` nodes (not initializers).",
        "* `sklearn_mlp` uses the `ai.onnx.ml` domain (ArrayFeatureExtractor) for the label output.",
        "* `nets.export_dynamo` (not committed, exercised by the tests) writes opset 18 with",
        "  weights > 256 B in `<model>.onnx.data`; its optimizer fuses BatchNorm into Conv and",
        "  Flatten becomes Reshape.",
        "",
    ]
    (OUT_DIR / "README.md").write_text("\n".join(lines))
    print(f"total build time {time.perf_counter() - t_all:.1f} s")


if __name__ == "__main__":
    main()
