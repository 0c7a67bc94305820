"""Golden model speed as a ratio to onnxruntime running the float model (goal: >= 0.3x).

Both run on one core: onnxruntime with intra_op_num_threads=1 (otherwise default session
options, CPU EP), numpy's BLAS limited to one thread. The golden side includes quantizing the
float input, so both go from the same float images to outputs. Batch 360 is the whole test
split in one call; batch 1 is a loop over single images. A report, not a test: exits 0.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable

import numpy as np

from quant import evaluate
from quant.ir import IntGraph
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from report import machine, markdown_table, progress, publish
from timing import interleaved, ort_session, paired_ratio, single_threaded_numpy
from zoo import MODELS, dataset, model_path

GOAL = 0.3
SINGLE_IMAGES = 60  # images per timed batch-1 loop
REPEATS = {360: 11, 1: 7}


@dataclass(frozen=True)
class Speed:
    model: str
    batch: int
    golden_rate: float  # images/s, from the median time
    ort_rate: float
    ratio: float  # median over rounds of t_ort / t_golden

    def row(self) -> list[str]:
        return [self.model, str(self.batch), f"{self.golden_rate:,.0f}", f"{self.ort_rate:,.0f}",
                f"{self.ratio:.3f}x", "yes" if self.ratio >= GOAL else "no"]


def golden(graph: IntGraph, x: np.ndarray, batch: int) -> Callable[[], None]:
    def run() -> None:
        for i in range(0, len(x), batch):
            evaluate.run(graph, evaluate.quantize_input(graph, x[i:i + batch]))
    return run


def float_ort(name: str, x: np.ndarray, batch: int) -> Callable[[], None]:
    session = ort_session(str(model_path(name)), threads=1)
    input_name = session.get_inputs()[0].name

    def run() -> None:
        for i in range(0, len(x), batch):
            session.run(None, {input_name: x[i:i + batch]})
    return run


def measure(name: str, batch: int) -> Speed:
    graph = quantize_model(model_path(name), dataset(name, "calib"), QuantOptions(), progress=False)
    x = dataset(name, "test").x
    x = x if batch > 1 else x[:SINGLE_IMAGES]
    times = interleaved({"golden": golden(graph, x, batch), "ort": float_ort(name, x, batch)},
                        REPEATS[batch])
    return Speed(name, batch, len(x) / statistics.median(times["golden"]),
                 len(x) / statistics.median(times["ort"]), paired_ratio(times["ort"], times["golden"]))


def summary(speeds: list[Speed], batch: int) -> str:
    ratios = [s.ratio for s in speeds if s.batch == batch]
    geomean = math.exp(statistics.fmean(math.log(r) for r in ratios))
    return (f"- batch {batch}: geometric mean ratio {geomean:.3f}x; goal >= {GOAL}x met on "
            f"{sum(r >= GOAL for r in ratios)} of {len(ratios)} models")


def main() -> None:
    jobs = [(name, batch) for batch in REPEATS for name in MODELS]
    with single_threaded_numpy() as threads, progress() as bar:
        task = bar.add_task("golden vs onnxruntime", total=len(jobs))
        speeds = []
        for name, batch in jobs:
            bar.update(task, description=f"{name}, batch {batch}")
            speeds.append(measure(name, batch))
            bar.advance(task)
    header = ["model", "batch", "golden images/s", "onnxruntime float images/s",
              "ratio golden/onnxruntime", f"goal >= {GOAL}x"]
    publish("golden_speed", "\n".join([
        machine(),
        f"One core: onnxruntime intra_op_num_threads=1; {threads}. Ratio: median over "
        f"{REPEATS[360]} (batch 360) or {REPEATS[1]} (batch 1, a loop over {SINGLE_IMAGES} "
        f"images) interleaved rounds of t_onnxruntime / t_golden. The golden time includes "
        f"input quantization; graphs are W8A8, dyadic, minmax.",
        "", markdown_table(header, [s.row() for s in speeds]), "",
        *(summary(speeds, batch) for batch in REPEATS)]))


if __name__ == "__main__":
    main()
