"""Speed as ratios on a shared, noisy machine: the candidate and its baseline are timed in
turn in the same process, repeatedly, and compared by medians. Absolute times are reported
for information only; no benchmark passes or fails on them.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import onnxruntime as ort


def interleaved(runs: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every run, `repeats` times each. One untimed warm-up call each,
    then rounds that call every run once in turn, so drift and a neighbour's load hit all
    runs alike instead of whichever happened to be timed at that moment."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator[i] / denominator[i]: each pair ran back to back."""
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def ort_session(path: str, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session with default options except the thread counts."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@contextmanager
def single_threaded_numpy() -> Iterator[str]:
    """Limit numpy's BLAS to one thread (the golden model's float64 matmuls use it); yields
    a note for the report saying whether that was possible."""
    try:
        from threadpoolctl import threadpool_limits  # optional: installed with scikit-learn
    except ImportError:
        yield "numpy BLAS threads NOT limited (threadpoolctl is not installed)"
        return
    with threadpool_limits(limits=1):
        yield "numpy BLAS limited to 1 thread (threadpoolctl)"
