"""RTL simulation speed: simulated cycles per second of the dense engine under cocotb, three ways,
as ratios to the same design clocked by cocotb with no Python at all (goal: the in-design
harness at >= 0.5x on Verilator).

(a) per-edge: `sim.cocotb_bench`, Python drives and samples the streams at every clock edge;
(b) fast: `sim.cocotb_fast` on `sim.player.Harness`, Python writes the stimulus, waits for
    `done` and reads the record back (no Python per cycle);
(c) baseline: the same harness built with the stimulus preloaded, configured and clocked to
    `done` by cocotb, nothing written or read.

Cycles per second come from cocotb's own record of each test (`results.xml`: simulated time
over the test's wall time), so simulator start-up and builds are excluded; the whole call's
wall time is printed for information. Rounds interleave (a), (b), (c); ratios are medians of
per-round ratios. The last (a) and (b) runs are checked bit-exact against the golden Gemm. A
report, not a test: exits 0.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from hw.fold import Fold
from report import machine, markdown_table, progress, publish
from sim import runner
from sim.bench import Transcript
from sim.player import HarnessCase, throughput
from sim.tb_dense import check_dense, dense_case, random_dense
from timing import interleaved, paired_ratio

GOAL = 0.5
PERIOD_NS = 10  # the benches' clock
MODES = ("per-edge", "fast", "baseline")
SAMPLES = {"verilator": 1600, "icarus": 200}  # vectors: ~205k and ~26k cycles
REPEATS = {"verilator": 5, "icarus": 3}
# The digits MLP's first layer shape: 64 x 64, int8, on 4 x 8 multipliers (G = 16, J = 8).
OUTPUTS, INPUTS, FOLD = 64, 64, Fold(4, 8)


@dataclass(frozen=True)
class Speed:
    simulator: str
    cycles: int
    cycles_per_sample: float
    rate: dict[str, float]  # median cycles/s per mode
    wall: dict[str, float]  # median seconds per whole simulator call
    ratio: dict[str, float]  # median over rounds of rate / baseline rate

    def rows(self) -> list[list[str]]:
        return [[self.simulator, mode, f"{self.cycles:,}", f"{self.rate[mode]:,.0f}",
                 f"{self.wall[mode]:.2f}", f"{self.ratio[mode]:.2f}x",
                 ("yes" if self.ratio[mode] >= GOAL else "no")
                 if (self.simulator, mode) == ("verilator", "fast") else ""]
                for mode in MODES]


def tools() -> str:
    icarus = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
    return (f"cocotb {version('cocotb')}, Verilator {version('verilator')}, "
            f"{icarus.splitlines()[0].split(' (')[0]}.")


def cocotb_rate(work_dir: Path) -> float:
    """Simulated cycles per second of the test cocotb ran in `work_dir`."""
    text = (work_dir / "results.xml").read_text()
    assert "<failure" not in text and "<error" not in text, f"cocotb test failed: {work_dir}"
    ratio = float(re.search(r'name="sim_time_ratio" value="([^"]+)"', text)[1])  # ns per s
    return ratio / PERIOD_NS


def measure(simulator: str, root: Path) -> Speed:
    engine, x = random_dense(8, FOLD, outputs=OUTPUTS, inputs=INPUTS, seed=1,
                             samples=SAMPLES[simulator])
    case = replace(dense_case(engine, x), max_cycles=10 ** 8)
    harness_case = HarnessCase.of(case)
    built = {"per-edge": runner.build(engine, simulator),
             "fast": runner.build_harness(engine, harness_case, simulator),
             "baseline": runner.build_harness(engine, harness_case, simulator, preload=True)}
    calls = {
        "per-edge": lambda: runner.run_stream(built["per-edge"], simulator, case,
                                              root / "per-edge"),
        "fast": lambda: runner.run_harness(built["fast"], simulator, harness_case, root / "fast"),
        "baseline": lambda: runner.run_baseline(built["baseline"], simulator, harness_case,
                                                root / "baseline"),
    }
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    transcripts: dict[str, Transcript | None] = {}

    def recorded(mode: str) -> Callable[[], None]:
        def run() -> None:
            transcripts[mode] = calls[mode]()
            rates[mode].append(cocotb_rate(root / mode))
        return run

    times = interleaved({mode: recorded(mode) for mode in MODES}, REPEATS[simulator])
    rates = {mode: values[1:] for mode, values in rates.items()}  # drop interleaved's warm-up
    for mode in ("per-edge", "fast"):  # the last run of each was right
        check_dense(engine, x, lambda _: transcripts[mode])
    fast_run = transcripts["fast"]
    return Speed(simulator, fast_run.cycles,
                 throughput(fast_run, engine.groups).cycles_per_sample,
                 {mode: statistics.median(values) for mode, values in rates.items()},
                 {mode: statistics.median(values) for mode, values in times.items()},
                 {mode: paired_ratio(rates[mode], rates["baseline"]) for mode in MODES})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, progress() as bar:
        task = bar.add_task("RTL simulation speed", total=len(runner.SIMULATORS))
        speeds = []
        for simulator in ("verilator", "icarus"):
            bar.update(task, description=f"{simulator}: builds and {REPEATS[simulator]} rounds")
            speeds.append(measure(simulator, Path(tmp) / simulator))
            bar.advance(task)
    header = ["simulator", "harness", "cycles", "cycles/s", "s per call", "ratio to baseline",
              f"goal >= {GOAL}x"]
    fast = {s.simulator: s.ratio["fast"] for s in speeds}
    publish("rtl_sim_speed", "\n".join([
        machine(),
        f"{tools()} Design: the dense engine, Gemm {OUTPUTS} x {INPUTS} int8 (dyadic "
        f"requantizer) on P{FOLD.outputs} x S{FOLD.inputs} multipliers, {speeds[0].cycles_per_sample:.0f} "
        f"cycles per vector; {SAMPLES['verilator']} vectors on Verilator, "
        f"{SAMPLES['icarus']} on Icarus, full rate. cycles/s: cocotb's simulated time over the "
        f"test's wall time (no builds, no simulator start-up), median of {REPEATS['verilator']} "
        f"(Verilator) or {REPEATS['icarus']} (Icarus) interleaved rounds; s per call: the "
        f"whole simulator run, for information. Ratio: median over rounds of cycles/s over "
        f"the baseline's. per-edge = sim.cocotb_bench (Python at every clock edge); fast = "
        f"sim.cocotb_fast on sim.player.Harness (stimulus written, record read back through "
        f"the simulator's handles); baseline = the same harness with its stimulus preloaded, "
        f"clocked to done by cocotb, nothing written or read.",
        "", markdown_table(header, [row for s in speeds for row in s.rows()]), "",
        f"**Goal >= {GOAL}x (fast harness on Verilator): "
        f"{'met' if fast['verilator'] >= GOAL else 'not met'}** "
        f"({fast['verilator']:.2f}x; Icarus {fast['icarus']:.2f}x)."]))


if __name__ == "__main__":
    main()
