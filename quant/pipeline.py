"""The two flows the front end drives: a float model ready to run, and a quantized model.

    load_float:     load -> verify -> prepare
    quantize_model: load -> verify -> prepare -> calibrate -> quantize -> bias correction

Each stage is its own module; this one only sequences them, checks the calibration data
against the model's input, and shows the stages as they run (on stderr, so stdout stays
free for results).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console

from quant.bias_correction import correct_biases
from quant.calibrate import calibrate
from quant.data import Dataset
from quant.errors import DataError, ModelError, QuantizationError
from quant.graph import Graph
from quant.ir import IntGraph
from quant.onnx_import import load_model
from quant.options import QuantOptions
from quant.prepare import prepare
from quant.quantize import quantize
from quant.verify import verify


def load_float(model_path: str | os.PathLike[str]) -> Graph:
    """The verified, prepared float graph of an ONNX file (what calibration and taps run)."""
    return _load_float(model_path, _Stages(None))


def quantize_model(model_path: str | os.PathLike[str], calib: Dataset, options: QuantOptions,
                   progress: bool = True) -> IntGraph:
    """The integer graph of an ONNX file, calibrated on `calib`; the same inputs give the
    same graph. With `progress`, each stage is shown on stderr as it runs."""
    stages = _Stages(Console(stderr=True) if progress else None)
    graph = _load_float(model_path, stages)
    calib.check_input_shape(graph.input.shape[1:])
    with _naming(model_path, calib.source):
        with stages.stage(f"calibrate ({options.calibration.value}, {len(calib)} samples)", spinner=False):
            ranges = calibrate(graph, calib.x, options.calibration, progress=progress,
                               bits=options.act_bits)
        with stages.stage("quantize"):
            int_graph = quantize(graph, ranges, options)
        if options.bias_correction:
            with stages.stage("bias correction"):
                correct_biases(int_graph, graph, calib.x)
    return int_graph


def _load_float(model_path: str | os.PathLike[str], stages: "_Stages") -> Graph:
    with stages.stage(f"load {model_path}"):
        graph = load_model(model_path)
    with stages.stage("verify"):
        graph = verify(graph, source=str(model_path))
        if graph.input.shape[0] is not None:
            graph = _free_batch(graph, model_path)
    with stages.stage("prepare"), _naming(model_path):
        return prepare(graph)


def _free_batch(graph: Graph, model_path: str | os.PathLike[str]) -> Graph:
    """Calibration and evaluation run batches of any size, so a static batch (what
    torch.onnx.export writes without dynamic axes) is made free, and the graph verified again,
    which runs it on another batch size."""
    free = graph.copy()
    free.input.shape = (None, *graph.input.shape[1:])
    try:
        return verify(free, source=str(model_path))
    except ModelError as e:
        raise ModelError(f"{e} (graph input '{graph.input.name}' has a static batch of "
                         f"{graph.input.shape[0]}, and the graph does not run with another; "
                         f"export it with a dynamic batch axis)") from None


@contextmanager
def _naming(model_path: str | os.PathLike[str], data_source: str | None = None) -> Iterator[None]:
    """Problems found after verify name their file, as those of load and verify do: the model
    for a pass or converter, the calibration data when a tensor takes non-finite values on it."""
    try:
        yield
    except (ModelError, QuantizationError) as e:
        raise type(e)(f"{model_path}: {e}") from None
    except DataError as e:
        if data_source is None:
            raise
        raise DataError(f"{data_source}: {e}") from None


class _Stages:
    """Shows a spinner while a stage runs and a tick with its time when it is done."""

    def __init__(self, console: Console | None) -> None:
        self.console = console

    @contextmanager
    def stage(self, title: str, spinner: bool = True) -> Iterator[None]:
        """`spinner=False` for stages that draw their own progress bar (one live display at a time)."""
        if self.console is None:
            yield
            return
        start = time.perf_counter()
        if spinner:
            with self.console.status(f"{title} ..."):
                yield
        else:
            yield
        self.console.print(f"[green]✓[/] {title} [dim]{time.perf_counter() - start:.2f}s[/]",
                           highlight=False)
