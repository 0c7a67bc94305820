"""Export an integer graph to a standard ONNX model with no floating-point tensor at all.

onnxruntime runs the export bit-exactly equal to the golden model (`quant.evaluate.run`).
Lowerings are keyed by integer-IR class (`@lowers(ir.Conv)`), one module per operator
family; each is imported here explicitly, so `lowering_for` sees them all.
"""
from __future__ import annotations

from quant.export import classify, elementwise, layout, linear, pool  # noqa: F401  (registers lowerings)
from quant.export.file import load_onnx, save_onnx
from quant.export.model import export_onnx
from quant.export.runtime import run_onnx
from quant.export.validate import check_integer_model, float_values

__all__ = ["check_integer_model", "export_onnx", "float_values", "load_onnx", "run_onnx", "save_onnx"]
