"""The golden model: run an integer graph on integer inputs with the numpy kernels.

A short interpreter loop, like onnx's ReferenceEvaluator: every op's output is checked
against its TensorSpec (type range and per-sample shape) so a kernel or quantizer bug is
caught at the op that caused it, and `taps=True` returns every tensor so two executions
(golden vs. ONNX export vs. RTL) can be compared layer by layer.
"""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.errors import DataError
from quant.ops import kernel_for
from quant.ops.checks import ContractError


def quantize_input(graph: ir.IntGraph, x: np.ndarray) -> np.ndarray:
    """q = clamp(floor(x / s + 1/2) + z, qmin, qmax) with the graph input's QParams."""
    x = np.asarray(x)
    _check_shape(graph, x, "float input")
    return graph.input_spec.qparams.quantize(x)


def dequantize(graph: ir.IntGraph, name: str, q: np.ndarray) -> np.ndarray:
    """real = s * (q - z) with tensor `name`'s QParams."""
    if name not in graph.tensors:
        raise DataError(f"graph '{graph.name}' has no tensor named '{name}'")
    return graph.tensors[name].qparams.dequantize(q)


def run(graph: ir.IntGraph, xq: np.ndarray, taps: bool = False,
        batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Integer outputs of `graph` for the integer input batch `xq` (batch axis first).

    Returns {output name: int64 array}, or every tensor (input included) with `taps`.
    `batch_size` bounds memory by running the batch in chunks; the result is the same.
    """
    xq = _checked_input(graph, xq)
    if batch_size is None or len(xq) <= batch_size:
        return _run_batch(graph, xq, taps)
    if batch_size < 1:
        raise DataError(f"batch size must be positive, not {batch_size}")
    chunks = [_run_batch(graph, xq[i:i + batch_size], taps) for i in range(0, len(xq), batch_size)]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _run_batch(graph: ir.IntGraph, xq: np.ndarray, taps: bool) -> dict[str, np.ndarray]:
    env = {graph.input: xq}
    for op in graph.ops:
        out = kernel_for(op)(op, *(env[name] for name in op.inputs))
        env[op.outputs[0]] = _checked_output(graph, op, np.asarray(out, np.int64))
    return env if taps else {name: env[name] for name in graph.outputs}


def _checked_input(graph: ir.IntGraph, xq: np.ndarray) -> np.ndarray:
    xq = np.asarray(xq)
    if not np.issubdtype(xq.dtype, np.integer):
        raise DataError(f"input '{graph.input}' must be an integer array, not {xq.dtype}")
    _check_shape(graph, xq, "integer input")
    itype = graph.input_spec.itype
    if xq.size and (int(xq.min()) < itype.qmin or int(xq.max()) > itype.qmax):
        raise DataError(f"input '{graph.input}' values [{int(xq.min())}, {int(xq.max())}] are "
                        f"outside its type {itype} [{itype.qmin}, {itype.qmax}]")
    return xq.astype(np.int64)


def _check_shape(graph: ir.IntGraph, x: np.ndarray, what: str) -> None:
    shape = graph.input_spec.shape
    if x.shape[1:] != tuple(shape):
        raise DataError(f"{what} '{graph.input}' must have shape (N, {', '.join(map(str, shape))}), "
                        f"not {x.shape}")


def _checked_output(graph: ir.IntGraph, op: ir.Op, out: np.ndarray) -> np.ndarray:
    spec = graph.tensors[op.outputs[0]]
    where = f"{type(op).__name__} '{op.name}' output '{op.outputs[0]}'"
    if out.shape[1:] != tuple(spec.shape):
        raise ContractError(f"{where} has per-sample shape {out.shape[1:]}, its spec says {spec.shape}")
    itype = spec.itype
    if out.size and (int(out.min()) < itype.qmin or int(out.max()) > itype.qmax):
        raise ContractError(f"{where} values [{int(out.min())}, {int(out.max())}] are outside "
                            f"its type {itype} [{itype.qmin}, {itype.qmax}]")
    return out
