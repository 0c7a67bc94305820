"""Shapes and dtypes of every tensor of a float graph, with the batch dimension left free.

ONNX shape inference cannot follow a shape that is computed at run time (torch's
`Shape -> Gather -> Unsqueeze -> Concat -> Reshape` flatten leaves the Reshape output
unknown), so shapes are read off onnxruntime instead: the graph runs on zeros at two batch
sizes, and a dimension that differs between the two runs depends on the batch (None).
Everything else is static and exact, whatever operators computed it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import ModelError
from quant.float_run import FloatSession
from quant.graph import Graph

PROBE_BATCHES = (2, 3)
"""Batch sizes of the two probe runs (not 1, which broadcasting could hide)."""

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class TensorInfo:
    shape: Shape
    dtype: np.dtype


def infer(graph: Graph) -> dict[str, TensorInfo]:
    """Shape (None for a dimension that follows the batch) and dtype of the input and of
    every node output of `graph`."""
    source = graph.input
    if any(d is None for d in source.shape[1:]):
        raise ModelError(f"graph input '{source.name}': shape {source.shape} has a free dimension "
                         "other than the batch")
    names = [name for node in graph.nodes for name in node.outputs if name]
    session = FloatSession(graph, [source.name, *names])
    batches = PROBE_BATCHES if source.shape[:1] == (None,) else source.shape[:1]
    runs = [session(np.zeros((n, *source.shape[1:]), source.dtype)) for n in batches]
    return {name: TensorInfo(_merge(name, [run[name].shape for run in runs]), runs[0][name].dtype)
            for name in runs[0]}


def _merge(name: str, shapes: list[tuple[int, ...]]) -> Shape:
    if len({len(s) for s in shapes}) != 1:
        raise ModelError(f"tensor '{name}': rank changes with the batch size ({shapes})")
    return tuple(dims[0] if len(set(dims)) == 1 else None for dims in zip(*shapes))
