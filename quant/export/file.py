"""Exported models on disk: written atomically, read back only if they are integer-only."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from quant import ir
from quant.atomic import atomic_write
from quant.errors import ModelError
from quant.export.model import export_onnx
from quant.export.validate import check_integer_model


def save_onnx(graph: ir.IntGraph, path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Export `graph` and write it to `path` (temporary file, then rename); returns the model."""
    model = export_onnx(graph)
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
    return model


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read an exported integer model; ModelError (one line) if the file is missing, is not
    ONNX, or is not a standard, float-free model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        model = onnx.load_model(path, load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError):
        raise ModelError(f"{path}: not an ONNX model (unreadable or truncated protobuf)") from None
    if not model.graph.node:
        raise ModelError(f"{path}: empty graph (no nodes); is this an ONNX model?")
    check_integer_model(model, str(path))
    return model
