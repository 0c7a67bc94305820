"""Stage 3: run calibration samples through the prepared float graph and give every tensor
that will be quantized (the graph input and every float node output) a real range.

Memory stays bounded by one batch: statistics are streamed, never the activations.
Pass 1 keeps a running min and max per tensor (all `minmax` needs). The histogram methods
run a second pass that accumulates, per tensor, a fixed-range histogram of |x| over
[0, max|x|] (ranges are known after pass 1, so every batch bins the same way and the result
does not depend on the batch size). How a histogram becomes a range: `quant.ranges`.
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from typing import Iterator

import numpy as np
from rich.console import Console
from rich.progress import Progress

from quant.errors import DataError
from quant.float_run import FloatSession
from quant.graph import Graph
from quant.options import CalibMethod
from quant.ranges import Range, TensorStats, check_percentile, tensor_range

__all__ = ["CalibMethod", "Range", "TensorStats", "activation_stats", "calibrate"]


def calibrate(graph: Graph, x: np.ndarray, method: CalibMethod = CalibMethod.MINMAX,
              batch_size: int = 64, progress: bool = True, percentile: float = 99.99,
              bins: int = 2048, bits: int = 8) -> dict[str, Range]:
    """The range of every quantized tensor of `graph` on samples `x` (N x input shape), keyed
    by tensor name, input first, then node outputs in graph order. `percentile` is used by
    PERCENTILE; `bits` (the activation width) by ENTROPY and MSE; `bins` by all three."""
    if method is CalibMethod.PERCENTILE:
        check_percentile(percentile)
    stats = activation_stats(graph, x, method is not CalibMethod.MINMAX, batch_size, progress, bins)
    return {name: tensor_range(s, method, percentile, bits) for name, s in stats.items()}


def activation_stats(graph: Graph, x: np.ndarray, histogram: bool = True, batch_size: int = 64,
                     progress: bool = True, bins: int = 2048) -> dict[str, TensorStats]:
    """Min, max and (with `histogram`) the |x| histogram of every quantized tensor; also what
    a report plots."""
    x = _check_samples(graph, x, batch_size, bins)
    session = FloatSession(graph, _node_outputs(graph))
    with _progress_bar(progress) as bar:
        stats = _extremes(graph, session, x, batch_size, bar)
        if histogram:
            _histograms(graph, session, x, batch_size, bins, stats, bar)
    return stats


def _check_samples(graph: Graph, x: np.ndarray, batch_size: int, bins: int) -> np.ndarray:
    for what, value in (("batch_size", batch_size), ("bins", bins)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"calibration {what} must be a positive integer, not {value!r}")
    x = np.asarray(x, dtype=graph.input.dtype)
    name, shape = graph.input.name, graph.input.shape
    if x.ndim != len(shape) or any(want not in (None, got) for want, got in zip(shape[1:], x.shape[1:])):
        raise DataError(f"calibration data of shape {x.shape} does not fit input '{name}' "
                        f"of shape {shape}")
    if len(x) == 0:
        raise DataError(f"calibration data for input '{name}' has no samples")
    if not np.isfinite(x).all():
        raise DataError(f"calibration data for input '{name}' has non-finite values")
    return x


def _node_outputs(graph: Graph) -> list[str]:
    names = [out for node in graph.nodes for out in node.outputs if out]
    return list(dict.fromkeys(names))


def _batches(graph: Graph, session: FloatSession, x: np.ndarray,
             batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Per batch: the float tensors to quantize (the input and float node outputs)."""
    names = _node_outputs(graph)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        outs = session(xb)
        yield {graph.input.name: xb} | {name: outs[name] for name in names
                                        if outs[name].dtype.kind == "f"}


def _extremes(graph: Graph, session: FloatSession, x: np.ndarray, batch_size: int,
              bar: Progress) -> dict[str, TensorStats]:
    task = bar.add_task("calibration: min/max", total=len(x))
    stats: dict[str, TensorStats] = {}
    for tensors in _batches(graph, session, x, batch_size):
        for name, a in tensors.items():
            low, high = float(a.min()), float(a.max())  # NaN if any value is NaN
            if not (math.isfinite(low) and math.isfinite(high)):
                raise DataError(f"tensor '{name}' takes non-finite values on the calibration data")
            s = stats.setdefault(name, TensorStats(low, high))
            s.low, s.high = min(s.low, low), max(s.high, high)
        bar.advance(task, len(tensors[graph.input.name]))
    return stats


def _histograms(graph: Graph, session: FloatSession, x: np.ndarray, batch_size: int, bins: int,
                stats: dict[str, TensorStats], bar: Progress) -> None:
    task = bar.add_task("calibration: histograms", total=len(x))
    for s in stats.values():
        s.counts, s.zeros = np.zeros(bins, np.int64), 0
    for tensors in _batches(graph, session, x, batch_size):
        for name, a in tensors.items():
            s = stats[name]
            s.zeros += int(np.count_nonzero(a == 0))
            if s.amax > 0:
                s.counts += np.histogram(np.abs(a), bins, range=(0.0, s.amax))[0]
            else:
                s.counts[0] += a.size
        bar.advance(task, len(tensors[graph.input.name]))


@contextmanager
def _progress_bar(progress: bool) -> Iterator[Progress]:
    """A transient bar on stderr, shown only when asked and stderr is a terminal."""
    console = Console(stderr=True)
    with Progress(console=console, transient=True,
                  disable=not (progress and sys.stderr.isatty())) as bar:
        yield bar
