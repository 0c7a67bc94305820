"""Run a float `Graph` in onnxruntime, the independent reference for every float stage.

Graph optimizations are disabled so that onnxruntime computes exactly the nodes we wrote
(no fusion, no constant folding) and every intermediate tensor still exists under its name;
calibration and layer-by-layer comparisons read those intermediates.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from quant.errors import ModelError
from quant.graph import Graph


class FloatSession:
    """One onnxruntime session over `graph` returning the tensors `outputs` (default: the graph
    outputs); kept open because calibration runs it on many batches."""

    def __init__(self, graph: Graph, outputs: list[str] | None = None, threads: int = 1) -> None:
        self.outputs = list(outputs) if outputs is not None else graph.output_names()
        self._input = graph.input
        computed = {name for node in graph.nodes for name in (*node.outputs, node.preactivation) if name}
        self._passthrough = [n for n in self.outputs if n == self._input.name]
        missing = [n for n in self.outputs if n not in computed and n not in self._passthrough]
        if missing:
            raise ModelError(f"graph '{graph.name}': tensor '{missing[0]}' is not computed by any node")
        fetched = [n for n in self.outputs if n not in self._passthrough]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model = typed_model(graph, fetched)
        self._fetched = fetched
        self._session = ort.InferenceSession(model.SerializeToString(), options,
                                             providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The requested tensors for the batch `x` (cast to the graph input's dtype)."""
        x = np.ascontiguousarray(x, dtype=self._input.dtype)
        values = dict(zip(self._fetched, self._session.run(self._fetched, {self._input.name: x})))
        values.update({name: x for name in self._passthrough})
        return {name: values[name] for name in self.outputs}


def run_float(graph: Graph, x: np.ndarray, outputs: list[str] | None = None,
              batch_size: int = 256) -> dict[str, np.ndarray]:
    """The tensors `outputs` (default: the graph outputs) for all samples of `x`, computed in
    batches of `batch_size` along the first axis and concatenated. A tensor that does not
    follow the batch (a shape, say) is returned once."""
    session = FloatSession(graph, outputs)
    batches = [x[start:start + batch_size] for start in range(0, max(len(x), 1), batch_size)]
    parts = [session(batch) for batch in batches]
    return {name: _join([part[name] for part in parts], [len(b) for b in batches], name)
            for name in session.outputs}


def _join(parts: list[np.ndarray], lengths: list[int], name: str) -> np.ndarray:
    if all(p.ndim >= 1 and p.shape[0] == n for p, n in zip(parts, lengths)):
        return np.concatenate(parts)
    if all(np.array_equal(p, parts[0]) for p in parts):
        return parts[0]
    raise ValueError(f"tensor '{name}' neither follows the batch axis nor is the same in every batch")


def typed_model(graph: Graph, outputs: list[str]) -> onnx.ModelProto:
    """`graph.to_onnx` exposing `outputs`, with their element types filled in: `to_onnx`
    declares extra outputs as UNDEFINED, which onnxruntime refuses to load."""
    model = graph.to_onnx(extra_outputs=outputs)
    untyped = [v for v in model.graph.output if v.type.tensor_type.elem_type == onnx.TensorProto.UNDEFINED]
    if not untyped:
        return model
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.output}
    for value in untyped:
        elem = types.get(value.name, onnx.TensorProto.UNDEFINED)
        if elem == onnx.TensorProto.UNDEFINED:
            raise ModelError(f"graph '{graph.name}': cannot infer the element type of tensor '{value.name}'")
        value.type.tensor_type.elem_type = elem
    return model
