"""Open a model file as what it is, and get class predictions from it.

A float model is run by onnxruntime on the user's original file, untouched, so its accuracy
is the honest baseline. An integer model (an ONNX file in intforge's own domain) is run by
the golden model on inputs quantized with the model's input scale.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from quant import evaluate, intfile, ir
from quant.data import Dataset
from quant.errors import ModelError

_ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph,
               ort_state.InvalidProtobuf, ort_state.NoSuchFile, ort_state.NotImplemented,
               ort_state.RuntimeException)
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(float16)": np.float16}
_BATCH = 256


def is_integer_model(path: str | os.PathLike[str]) -> bool:
    """True for an intforge integer model, False for any other ONNX model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError):
        raise ModelError(f"{path}: not an ONNX model") from None
    return any(opset.domain == intfile.DOMAIN for opset in model.opset_import)


class FloatModel:
    """A float ONNX file run as is by onnxruntime; outputs in the model's order."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # problems come back as exceptions; stderr stays one line
        try:
            self._session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        except _ORT_ERRORS as e:
            raise ModelError(f"{path}: onnxruntime cannot load the model: {_first_line(e)}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: the model has {len(inputs)} inputs; intforge needs exactly one")
        self._input = inputs[0]
        if self._input.type not in _FLOAT_TYPES:
            raise ModelError(f"{path}: input '{self._input.name}' is {self._input.type}, not a float tensor")
        batch = self._input.shape[0] if self._input.shape else None
        self._batch = batch if isinstance(batch, int) and batch > 0 else _BATCH

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Per-sample input shape; None for a free dimension."""
        return tuple(d if isinstance(d, int) else None for d in self._input.shape[1:])

    def outputs(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=_FLOAT_TYPES[self._input.type])
        try:
            parts = [self._session.run(None, {self._input.name: x[i:i + self._batch]})
                     for i in range(0, len(x), self._batch)]
        except _ORT_ERRORS as e:
            raise ModelError(f"{self.path}: onnxruntime failed to run the model: {_first_line(e)}") from None
        names = [output.name for output in self._session.get_outputs()]
        for start, part in zip(range(0, len(x), self._batch), parts):
            samples = len(x[start:start + self._batch])
            for name, value in zip(names, part):
                if value.ndim == 0 or len(value) != samples:
                    raise ModelError(f"{self.path}: output '{name}' has shape {value.shape} for "
                                     f"{samples} samples; it must keep the batch as its first axis")
        return [np.concatenate(column) for column in zip(*parts)]


def labels(first_output: np.ndarray) -> np.ndarray:
    """Predicted classes from a model's first output (float scores, or integer scores of the
    golden model, which argmax to the same class as their dequantized values since scales are
    positive). An output with one value per sample is already the label (sklearn's `label`)."""
    per_sample = first_output.reshape(len(first_output), -1)
    if per_sample.shape[1] == 1:
        return per_sample[:, 0].astype(np.int64)
    return per_sample.argmax(axis=1)


def run_int(graph: ir.IntGraph, data: Dataset, taps: bool = False) -> dict[str, np.ndarray]:
    """The golden model on a float dataset: inputs quantized with the graph's input QParams."""
    data.check_input_shape(graph.input_spec.shape)
    return evaluate.run(graph, evaluate.quantize_input(graph, data.x), taps=taps, batch_size=_BATCH)


@dataclass(frozen=True)
class Accuracy:
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n


def class_count(first_output: np.ndarray) -> int | None:
    """Classes scored per sample by a model's first output; None when it is the label itself."""
    per_sample = int(np.prod(first_output.shape[1:], dtype=np.int64))
    return per_sample if per_sample > 1 else None


def accuracy(predicted: np.ndarray, data: Dataset, classes: int | None = None) -> Accuracy | None:
    """Share of samples whose predicted class equals the label; None without labels. With
    `classes` (see `class_count`), a label that is not a class index is a DataError."""
    if data.y is None:
        return None
    if classes is not None:
        data.check_labels(classes)
    return Accuracy(int(np.sum(predicted == data.y)), len(data))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
