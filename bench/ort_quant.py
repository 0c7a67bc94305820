"""The baseline quantizer: onnxruntime's own `quantize_static`, QDQ format, signed 8-bit
weights and unsigned 8-bit activations, on the same calibration images as intforge.

Unlike intforge's output, the result is not all-integer: QDQ quantizes the tensors between
operators, and an operator without an integer kernel (Tanh, Sigmoid, Softmax ...) runs in
float between its DequantizeLinear and QuantizeLinear.
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process


@dataclass(frozen=True)
class OrtConfig:
    method: CalibrationMethod
    per_channel: bool

    @property
    def label(self) -> str:
        granularity = "per-channel" if self.per_channel else "per-tensor"
        return f"onnxruntime QDQ U8S8 {self.method.name} {granularity}"


METHODS = (CalibrationMethod.MinMax, CalibrationMethod.Entropy, CalibrationMethod.Percentile)
CONFIGS = [OrtConfig(method, per_channel) for method in METHODS for per_channel in (False, True)]


class NothingQuantized(RuntimeError):
    """quantize_static wrote a model without a single QuantizeLinear."""


class Samples(CalibrationDataReader):
    """All calibration images as one batch (the zoo models have a free batch axis)."""

    def __init__(self, input_name: str, x: np.ndarray) -> None:
        self._feeds = iter([{input_name: x}])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def preprocess(model: Path, workdir: Path) -> Path:
    """onnxruntime's recommended shape inference and optimization before quantize_static."""
    out = workdir / f"{model.stem}.pre.onnx"
    with _quiet():
        quant_pre_process(str(model), str(out))
    return out


def quantize(model: Path, x: np.ndarray, config: OrtConfig, workdir: Path) -> Path:
    """The QDQ model written by quantize_static; raises whatever onnxruntime raises, or
    NothingQuantized: a float model would otherwise score as a perfect quantization."""
    out = workdir / f"{model.stem}.{config.method.name}.{int(config.per_channel)}.onnx"
    input_name = onnx.load(str(model), load_external_data=False).graph.input[0].name
    with _quiet():
        quantize_static(str(model), str(out), Samples(input_name, x), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=config.per_channel, calibrate_method=config.method)
    if not any(node.op_type == "QuantizeLinear" for node in onnx.load(str(out)).graph.node):
        raise NothingQuantized(f"{out}: quantize_static quantized nothing")
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """quantize_static prints its progress on stdout and warns through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
