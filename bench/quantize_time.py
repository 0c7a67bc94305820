"""Calibrate + quantize time for resnet_gap on 200 calibration images, per calibration
method (goal: <= 5 s on the 2-core machine), and as a ratio to one onnxruntime float pass
over the same 200 images, timed in turn in the same process.

The quantizer runs as a user would run it (`quantize_model`: load, verify, prepare,
calibrate, quantize, bias correction), on one core: its onnxruntime sessions use one
thread, the baseline session too, and numpy's BLAS is limited to one thread (with two, a
busy neighbour on the other core made OpenBLAS several times slower). A report, not a
test: exits 0.
"""
from __future__ import annotations

import statistics
from typing import Callable

from quant.options import CalibMethod, QuantOptions
from quant.pipeline import quantize_model
from report import machine, markdown_table, progress, publish
from timing import interleaved, ort_session, paired_ratio, single_threaded_numpy
from zoo import dataset, model_path

MODEL = "resnet_gap"
GOAL_SECONDS = 5.0
REPEATS = 5
BASELINE = "onnxruntime"


def runs() -> dict[str, Callable[[], object]]:
    """One onnxruntime float pass, then a full quantization per calibration method."""
    path, calib = model_path(MODEL), dataset(MODEL, "calib")
    session = ort_session(str(path), threads=1)
    feed = {session.get_inputs()[0].name: calib.x}
    result: dict[str, Callable[[], object]] = {BASELINE: lambda: session.run(None, feed)}
    for method in CalibMethod:
        options = QuantOptions(calibration=method)
        result[method.value] = lambda options=options: quantize_model(path, calib, options,
                                                                      progress=False)
    return result


def main() -> None:
    timed = runs()
    with single_threaded_numpy() as threads, progress() as bar:
        bar.add_task(f"timing {len(timed)} runs x {REPEATS + 1} rounds", total=None)
        times = interleaved(timed, REPEATS)
    baseline = times.pop(BASELINE)
    medians = {method: statistics.median(seconds) for method, seconds in times.items()}
    rows = [[method, f"{medians[method]:.2f}", f"{min(seconds):.2f}-{max(seconds):.2f}",
             f"{paired_ratio(seconds, baseline):,.0f}x",
             "met" if medians[method] <= GOAL_SECONDS else "MISSED"]
            for method, seconds in times.items()]
    slowest = max(medians, key=medians.__getitem__)
    met = sum(m <= GOAL_SECONDS for m in medians.values())
    header = ["calibration", "median s", "range s", "ratio to one onnxruntime pass",
              f"goal <= {GOAL_SECONDS:g} s"]
    publish("quantize_time", "\n".join([
        machine(),
        f"{MODEL}, {len(dataset(MODEL, 'calib'))} calibration images, W8A8 dyadic per-channel "
        f"with bias correction; {REPEATS} interleaved rounds after a warm-up; {threads}. "
        f"One onnxruntime float pass over the same images (1 thread) took "
        f"{statistics.median(baseline) * 1e3:.2f} ms (median).",
        "", markdown_table(header, rows), "",
        f"**Goal <= {GOAL_SECONDS:g} s: met by {met} of {len(medians)} calibration methods** "
        f"(slowest: {slowest}, {medians[slowest]:.2f} s median)."]))


if __name__ == "__main__":
    main()
