"""An sklearn MLPClassifier on the 64 flattened digits features, converted with skl2onnx.

``build_sklearn_mlp(path)`` trains (deterministically) on the shared digits train
split and writes an ONNX model with input ``x`` float32 (N, 64) (pixels / 16) and
two outputs (ZipMap disabled, batch axis named ``N``): ``label`` int64 (N,) and ``probabilities``
float32 (N, 10).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .nets import digits_split

TARGET_OPSET = 13


def flat(x: np.ndarray) -> np.ndarray:
    """(N,1,8,8) digits -> (N,64) float32 features."""
    return np.ascontiguousarray(x.reshape(len(x), 64), dtype=np.float32)


def train_sklearn_mlp():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    s = digits_split()
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", max_iter=1000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(flat(s.x_train), s.y_train)
    return clf


def build_sklearn_mlp(path: str | Path):
    """Train the MLPClassifier and write it to ``path``; returns the fitted classifier."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    clf = train_sklearn_mlp()
    onx = convert_sklearn(
        clf,
        initial_types=[("x", FloatTensorType([None, 64]))],
        options={id(clf): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.graph.name = "sklearn_mlp"  # skl2onnx default is a random uuid -> non-reproducible file
    for v in list(onx.graph.input) + list(onx.graph.output):  # name the unnamed batch axis "N"
        d0 = v.type.tensor_type.shape.dim[0]
        if not d0.HasField("dim_value") and not d0.dim_param:
            d0.dim_param = "N"
    Path(path).write_bytes(onx.SerializeToString())
    return clf


if __name__ == "__main__":
    import sys
    import tempfile

    import onnx

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "sklearn_mlp.onnx"
    build_sklearn_mlp(out)
    m = onnx.load(str(out))
    print(out, [n.op_type for n in m.graph.node])
