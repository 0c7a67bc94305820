"""Quantized zoo models shared by several test modules (cached: quantizing takes ~1 s each).

The float reference is always onnxruntime on the ORIGINAL .onnx file, never our own graph.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from quant import evaluate
from quant.data import Dataset, load_dataset
from quant.ir import IntGraph
from quant.options import QuantOptions, ScaleMode
from quant.pipeline import quantize_model

REPO = Path(__file__).resolve().parents[1]
ZOO = ("mlp", "cnn_bn", "resnet_gap", "dwsep", "gated")
ALL_MODELS = ("digits_cnn", *ZOO, "sklearn_mlp")


def model_path(name: str) -> Path:
    return REPO / "models" / "digits_cnn.onnx" if name == "digits_cnn" else REPO / "tests" / "models" / f"{name}.onnx"


@lru_cache(maxsize=None)
def dataset(split: str, flat: bool) -> Dataset:
    data = load_dataset(REPO / "models" / f"digits_{split}.npz")
    return Dataset(data.x.reshape(len(data.x), -1), data.y, data.source) if flat else data


def data_for(name: str, split: str) -> Dataset:
    """The sklearn MLP takes 64 flat features; every torch model takes (N, 1, 8, 8)."""
    return dataset(split, name == "sklearn_mlp")


@lru_cache(maxsize=None)
def quantized(name: str, weight_bits: int = 8, scale: str = "dyadic") -> IntGraph:
    options = QuantOptions(weight_bits=weight_bits, scale=ScaleMode(scale))
    return quantize_model(model_path(name), data_for(name, "calib"), options, progress=False)


def predictions(outputs: list[np.ndarray]) -> np.ndarray:
    """Class per sample: the first output's argmax, or the first output itself if it is a label."""
    first = outputs[0]
    return first.reshape(len(first), -1).argmax(axis=1) if first.ndim > 1 and first.shape[-1] > 1 \
        else first.reshape(-1)


@lru_cache(maxsize=None)
def float_predictions(name: str) -> np.ndarray:
    session = ort.InferenceSession(str(model_path(name)), providers=["CPUExecutionProvider"])
    x = data_for(name, "test").x
    return predictions(session.run(None, {session.get_inputs()[0].name: x}))


def int_predictions(graph: IntGraph, name: str) -> np.ndarray:
    x = data_for(name, "test").x
    out = evaluate.run(graph, evaluate.quantize_input(graph, x))
    return predictions([out[o] for o in graph.outputs])
