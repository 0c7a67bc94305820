"""The benchmark models and their data: the digits zoo the test suite uses, same splits.

Predictions come from the CLI's own helpers (`intforge_cli.models`), so a benchmark scores a
model exactly as `intforge eval` and `intforge compare` do.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from intforge_cli.models import FloatModel, labels, run_int
from quant.data import Dataset, load_dataset
from quant.ir import IntGraph

REPO = Path(__file__).resolve().parents[1]
MODELS = ("digits_cnn", "mlp", "cnn_bn", "resnet_gap", "dwsep", "gated", "sklearn_mlp")


def model_path(name: str) -> Path:
    if name == "digits_cnn":
        return REPO / "models" / "digits_cnn.onnx"
    return REPO / "tests" / "models" / f"{name}.onnx"


@lru_cache(maxsize=None)
def dataset(name: str, split: str) -> Dataset:
    """`split` ("calib" or "test") shaped for model `name`: the images are 1x8x8, but e.g. the
    sklearn MLP takes the same 64 values flat."""
    data = load_dataset(REPO / "models" / f"digits_{split}.npz")
    shape = FloatModel(model_path(name)).input_shape
    return Dataset(data.x.reshape(len(data.x), *shape), data.y, data.source)


def float_labels(name: str) -> np.ndarray:
    """Classes onnxruntime predicts on the test split with the original float model."""
    return labels(FloatModel(model_path(name)).outputs(dataset(name, "test").x)[0])


def golden_labels(graph: IntGraph, name: str) -> np.ndarray:
    """Classes the golden model predicts on the test split."""
    return labels(run_int(graph, dataset(name, "test"))[graph.outputs[0]])
