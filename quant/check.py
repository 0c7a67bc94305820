"""Does onnxruntime, running the ONNX export, give the golden model's bits? Every element.

Both executions get the same integer input (quantized once, by the golden model's rule);
every output element is compared, and with `layers` every intermediate tensor too (the
export exposes them as extra outputs), so a disagreement is traced to the first op that
produced it, in graph order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from quant import ir
from quant.evaluate import quantize_input, run
from quant.export import export_onnx, run_onnx


@dataclass(frozen=True)
class Mismatch:
    """One disagreeing element: tensor, the op producing it, index (sample first), values."""

    tensor: str
    op: str
    index: tuple[int, ...]
    golden: int
    onnx: int

    def __str__(self) -> str:
        return (f"tensor '{self.tensor}' of op '{self.op}' at index {self.index}: "
                f"golden {self.golden}, onnxruntime {self.onnx}")


@dataclass(frozen=True)
class CheckReport:
    """Elements compared and how many differ, per tensor in graph order, and the first one."""

    samples: int
    checked: int
    mismatches: int
    by_tensor: dict[str, int]  # tensor name -> mismatching elements, in graph order
    first: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def __str__(self) -> str:
        head = (f"{self.samples} samples, {len(self.by_tensor)} tensors, {self.checked} elements "
                f"checked, {self.mismatches} mismatches")
        return head if self.first is None else f"{head}; first: {self.first}"


def check(graph: ir.IntGraph, x_float: np.ndarray, layers: bool = False,
          model: onnx.ModelProto | None = None) -> CheckReport:
    """Compare golden and onnxruntime on `x_float` (N samples of the float input).

    `model` is the export to check (e.g. from `load_onnx`); by default `graph` is exported
    now. With `layers`, every tensor an op produces is compared, not only the outputs.
    Raises DataError if `x_float` does not match the graph's input shape.
    """
    xq = quantize_input(graph, x_float)
    producers = {out: op.name for op in graph.ops for out in op.outputs}
    names = list(producers) if layers else list(graph.outputs)
    golden = run(graph, xq, taps=layers)
    ours = run_onnx(export_onnx(graph) if model is None else model, xq, extra_outputs=names)
    by_tensor: dict[str, int] = {}
    first = None
    for name in names:
        want, got = golden[name], ours[name]
        if want.shape != got.shape:
            raise AssertionError(f"export bug: tensor '{name}' has shape {got.shape} in onnxruntime, "
                                 f"{want.shape} in the golden model")
        bad = want != got
        by_tensor[name] = int(bad.sum())
        if first is None and by_tensor[name]:
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            first = Mismatch(name, producers.get(name, ""), index, int(want[index]), int(got[index]))
    return CheckReport(samples=len(xq), checked=sum(golden[name].size for name in names),
                       mismatches=sum(by_tensor.values()), by_tensor=by_tensor, first=first)
