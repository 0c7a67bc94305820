"""Float model against integer model on one dataset: predictions, and layer by layer.

Every tensor that exists under the same name in the prepared float graph and in the integer
graph is compared: the float value (onnxruntime) against the dequantized integer value
(golden model), as SQNR = 10 log10(sum f^2 / sum (f - d)^2) in dB and the largest |f - d|.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from intforge_cli.models import FloatModel, accuracy, class_count, labels, run_int
from quant import evaluate, ir
from quant.data import Dataset
from quant.float_run import run_float
from quant.pipeline import load_float


@dataclass
class LayerError:
    """One compared tensor; `float_values` and the integer grid's real range feed the plots."""

    name: str
    op: str
    sqnr_db: float
    max_abs_error: float
    float_values: np.ndarray
    grid: tuple[float, float]

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "op": self.op, "sqnr_db": self.sqnr_db,
                "max_abs_error": self.max_abs_error}


@dataclass
class Comparison:
    n: int
    agreement: float
    float_accuracy: float | None
    int_accuracy: float | None
    layers: list[LayerError]

    def as_json(self) -> dict[str, object]:
        return {"n": self.n, "agreement": self.agreement, "float_accuracy": self.float_accuracy,
                "int_accuracy": self.int_accuracy, "layers": [l.as_json() for l in self.layers]}


def compare(float_path: str | os.PathLike[str], graph: ir.IntGraph, data: Dataset) -> Comparison:
    """Compare the float model at `float_path` with its integer `graph` on `data`."""
    taps = run_int(graph, data, taps=True)
    int_pred = labels(taps[graph.outputs[0]])
    float_first = FloatModel(float_path).outputs(data.x)[0]
    float_pred = labels(float_first)
    float_acc = accuracy(float_pred, data, class_count(float_first))
    int_acc = accuracy(int_pred, data, class_count(taps[graph.outputs[0]]))
    return Comparison(n=len(data), agreement=float(np.mean(float_pred == int_pred)),
                      float_accuracy=float_acc.value if float_acc else None,
                      int_accuracy=int_acc.value if int_acc else None,
                      layers=layer_errors(float_path, graph, data, taps))


def layer_errors(float_path: str | os.PathLike[str], graph: ir.IntGraph, data: Dataset,
                 taps: dict[str, np.ndarray]) -> list[LayerError]:
    """Errors of every integer tensor (input first, then in op order) that the float graph
    also computes, as floats (not labels or indices), with the same shape."""
    float_graph = load_float(float_path)
    known = {float_graph.input.name} | {out for node in float_graph.nodes for out in node.outputs}
    named = [(graph.input, "input")] + [(op.outputs[0], type(op).__name__) for op in graph.ops]
    named = [(name, op) for name, op in named if name in known]
    # one batch: every tap is held for all samples anyway, and a tensor that does not follow
    # the batch axis (sklearn's label plumbing) then comes back as is, to be skipped below
    reference = run_float(float_graph, data.x, outputs=[name for name, _ in named],
                          batch_size=len(data))
    result = []
    for name, op in named:
        if reference[name].shape != taps[name].shape or reference[name].dtype.kind != "f":
            continue
        ref = reference[name].astype(np.float64)
        approx = evaluate.dequantize(graph, name, taps[name])
        qp = graph.tensors[name].qparams
        grid = tuple(float(v) for v in qp.dequantize(np.array([qp.itype.qmin, qp.itype.qmax])))
        result.append(LayerError(name=name, op=op, sqnr_db=sqnr_db(ref, approx),
                                 max_abs_error=float(np.max(np.abs(ref - approx))),
                                 float_values=ref, grid=grid))
    return result


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """10 log10(signal / noise); +inf when exact, -inf when the reference is all zero."""
    noise = float(np.sum((reference - approx) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
