"""Whole-network RTL simulation speed: simulated cycles per second of each zoo model's
`Accelerator` on Verilator under cocotb with stimulus and checking, as a ratio to the same
design running free (goal: >= 0.5x).

(a) checked: `sim.network.simulate` on the in-design harness (`sim.player`): the test images
    written into the player's memory, the outputs read back and compared, element by element,
    with the golden model (the harness build of `tests/test_network_sim.py`);
(b) free-running: the same harness built with the stimulus preloaded, configured and clocked
    to `done` by cocotb, nothing written or read (`sim.runner.run_baseline`).

Both at full rate, W8A8, 32 multipliers. Cycles per second come from cocotb's record of each
run (`results.xml`: simulated time over the test's wall time, so builds and simulator
start-up are excluded); the whole call of (a), golden comparison included, is timed too and
reported as a second ratio, for information. Rounds interleave (a) and (b); ratios are
medians of per-round ratios. A report, not a test: exits 0.
"""
from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.lower import Accelerator
from hw.plan import make_plan
from hw.streams import to_stream_order
from quant import evaluate
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from report import machine, markdown_table, progress, publish
from rtl_sim_speed import cocotb_rate, tools
from sim import runner
from sim.network import NetworkRun, build_for, expected_outputs, simulate
from sim.player import HarnessCase
from timing import interleaved, paired_ratio
from zoo import dataset, model_path

GOAL = 0.5
MODELS = ("mlp", "cnn_bn", "resnet_gap", "dwsep", "digits_cnn")
MULTIPLIERS = 32
CAPACITY = 360  # the harness build of tests/test_network_sim.py
IMAGES = {"resnet_gap": 40, "dwsep": 120}  # others: the whole 360-image test split
REPEATS = 3


@dataclass(frozen=True)
class Speed:
    name: str
    interval: int
    images: int
    cycles: int
    checked: float  # median cycles/s of (a), from cocotb
    free: float  # median cycles/s of (b)
    ratio: float  # median over rounds of checked / free
    call_ratio: float  # the same with (a)'s whole call (start-up, golden comparison) timed
    mismatches: int

    def row(self) -> list[str]:
        return [self.name, f"{self.interval:,}", str(self.images), f"{self.cycles:,}",
                f"{self.checked:,.0f}", f"{self.free:,.0f}", f"{self.ratio:.2f}x",
                f"{self.call_ratio:.2f}x", str(self.mismatches),
                "yes" if self.ratio >= GOAL else "no"]


def measure(name: str, root: Path) -> Speed:
    graph = quantize_model(model_path(name), dataset(name, "calib"), QuantOptions(), progress=False)
    accelerator = Accelerator(graph, make_plan(graph, multipliers=MULTIPLIERS))
    xq = evaluate.quantize_input(graph, dataset(name, "test").x[:IMAGES.get(name, CAPACITY)])
    mask = (1 << len(accelerator.i_stream.p.as_value())) - 1
    beats = [int(v) & mask for v in to_stream_order(xq).reshape(-1)]
    free_case = HarnessCase(inputs={"i_stream": beats}, outputs=expected_outputs(graph, xq).size,
                            max_cycles=2 ** 32 - 1)
    checked_build = build_for(accelerator, CAPACITY, "verilator")
    free_build = runner.build_harness(accelerator, free_case, "verilator", preload=True)
    runs: list[NetworkRun] = []
    rates: dict[str, list[float]] = {"checked": [], "free": []}
    calls = {
        "checked": lambda: runs.append(simulate(accelerator, graph, xq, "verilator",
                                                root / "checked", build_dir=checked_build)),
        "free": lambda: runner.run_baseline(free_build, "verilator", free_case, root / "free"),
    }

    def recorded(mode: str):
        def run() -> None:
            calls[mode]()
            rates[mode].append(cocotb_rate(root / mode))
        return run

    times = interleaved({mode: recorded(mode) for mode in calls}, REPEATS)
    rates = {mode: values[1:] for mode, values in rates.items()}  # drop interleaved's warm-up
    run = runs[-1]
    return Speed(name, accelerator.interval, len(xq), run.cycles,
                 statistics.median(rates["checked"]), statistics.median(rates["free"]),
                 paired_ratio(rates["checked"], rates["free"]),
                 paired_ratio([run.cycles / t for t in times["checked"]], rates["free"]),
                 max(r.mismatches for r in runs))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, progress() as bar:
        task = bar.add_task("whole-network simulation speed", total=len(MODELS))
        speeds = []
        for name in MODELS:
            bar.update(task, description=f"{name}: builds and {REPEATS} rounds")
            speeds.append(measure(name, Path(tmp) / name))
            bar.advance(task)
    header = ["model", "cycles/inference", "images", "cycles", "checked cycles/s",
              "free-running cycles/s", "ratio", "ratio, whole call", "mismatches",
              f"goal >= {GOAL}x"]
    worst = min(speeds, key=lambda s: s.ratio)
    publish("network_sim_speed", "\n".join([
        machine(),
        f"{tools()} Each zoo model's Accelerator (W8A8, {MULTIPLIERS} multipliers, full rate) on "
        f"Verilator. checked = sim.network.simulate on the in-design harness: the test images "
        f"written into the player's memory, every output element read back and compared with "
        f"the golden model; free-running = the same harness with the stimulus preloaded, "
        f"clocked to done by cocotb, nothing written or read. cycles/s: cocotb's simulated "
        f"time over the test's wall time (no builds, no simulator start-up), median of "
        f"{REPEATS} interleaved rounds; ratio: median over rounds of checked over free-running "
        f"cycles/s; 'whole call': checked's cycles over the whole simulate() call (simulator "
        f"start-up, stimulus, golden model and comparison included), for information.",
        "", markdown_table(header, [s.row() for s in speeds]), "",
        f"**Goal >= {GOAL}x: {'met' if worst.ratio >= GOAL else 'not met'}** on "
        f"{sum(s.ratio >= GOAL for s in speeds)} of {len(speeds)} models (lowest: {worst.name}, "
        f"{worst.ratio:.2f}x)."]))


if __name__ == "__main__":
    main()
