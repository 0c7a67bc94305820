"""Co-simulating a build on many samples: split across simulator processes, plus a timing run.

The samples are cut into `jobs` contiguous parts, each streamed through the accelerator in
its own simulator process with random input gaps and output backpressure (part k uses seed
`seed + k`), and checked element by element against the golden model (`sim.network`).
The harness is built once, before any part runs, for the largest part: two processes never
build one folder, and every part runs on the same build.

Steady-state cycles per inference come from one more run at full rate (no gaps, no
backpressure) on the first `TIMING_SAMPLES` samples: with random gaps the measured rate
would be the input player's, not the accelerator's, whenever the input stream is the
bottleneck. Its outputs are checked too. Simulated cycles per second are all runs' cycles
over the simulators' own time (cocotb's record of each test: no build, no start-up).
"""
from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from amaranth.hdl import Fragment

from hw.lower import Accelerator
from hw.plan import Plan
from quant import ir
from sim.network import Mismatch, NetworkRun, build_for, simulate

TIMING_SAMPLES = 4
DEFAULT_GAP = DEFAULT_STALL = 0.2  # probabilities of an idle input cycle, a stalled output cycle


@dataclass(frozen=True)
class Part:
    """One simulator run: samples `xq` (the first is sample `offset` of the whole set)."""

    name: str
    offset: int
    xq: np.ndarray
    gap: float
    stall: float
    seed: int


@dataclass
class PartResult:
    part: Part
    run: NetworkRun
    seconds: float  # the simulation's wall time (`simulation_seconds`)


@dataclass
class SimResult:
    samples: int
    parts: list[PartResult]  # the split runs in sample order, then the full-rate run
    wall_seconds: float  # running every part, processes started and simulators set up included
    initiation_interval: int

    @property
    def timing(self) -> NetworkRun:
        return self.parts[-1].run

    @property
    def checked(self) -> int:
        return sum(p.run.checked for p in self.parts)

    @property
    def mismatches(self) -> int:
        return sum(p.run.mismatches for p in self.parts)

    @property
    def cycles(self) -> int:
        return sum(p.run.cycles for p in self.parts)

    @property
    def seconds(self) -> float:
        """The simulators' own time, summed over parts."""
        return sum(p.seconds for p in self.parts)

    @property
    def cycles_per_second(self) -> float:
        """Simulated cycles per second of simulator time: one simulator's speed (with several
        processes, the wall-clock rate is up to `jobs` times this)."""
        return self.cycles / self.seconds if self.seconds > 0 else float("nan")

    def first_failure(self) -> tuple[PartResult, Mismatch] | None:
        """The first mismatching element: its run and its place in that run."""
        return next(((p, p.run.first_mismatch) for p in self.parts if p.run.first_mismatch), None)


def split(xq: np.ndarray, jobs: int, *, gap: float, stall: float, seed: int) -> list[Part]:
    """The parts of a run over `xq`: `jobs` contiguous slices, then the full-rate run (the
    first TIMING_SAMPLES samples; a single sample is streamed twice, since a rate needs two)."""
    size = math.ceil(len(xq) / max(1, min(jobs, len(xq))))
    parts = [Part(f"part{k}", start, xq[start:start + size], gap, stall, seed + k)
             for k, start in enumerate(range(0, len(xq), size))]
    timed = xq[:TIMING_SAMPLES] if len(xq) >= 2 else np.concatenate([xq, xq])
    return parts + [Part("full_rate", 0, timed, 0.0, 0.0, seed)]


def prepare(graph: ir.IntGraph, plan: Plan, parts: list[Part], simulator: str) -> Path:
    """Build (cached) the one harness every part runs on: memories for the largest part."""
    return build_for(Accelerator(graph, plan), max(len(p.xq) for p in parts), simulator)


def run_parts(graph: ir.IntGraph, plan: Plan, parts: list[Part], simulator: str, harness: Path,
              work_dir: Path, *, jobs: int = 1,
              on_done: Callable[[PartResult], None] | None = None) -> SimResult:
    """Run every part on the `prepare`d harness, `jobs` simulator processes at a time."""
    done: dict[str, PartResult] = {}

    def finished(result: PartResult) -> None:
        done[result.part.name] = result
        if on_done:
            on_done(result)

    start = time.perf_counter()
    if jobs <= 1:
        for part in parts:
            finished(run_part(graph, plan, part, simulator, harness, work_dir))
    else:
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, no forked state
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = [pool.submit(run_part, graph, plan, part, simulator, harness, work_dir)
                       for part in parts]
            for future in as_completed(futures):
                finished(future.result())
    wall = time.perf_counter() - start
    return SimResult(sum(len(p.xq) for p in parts[:-1]), [done[p.name] for p in parts], wall,
                     plan.interval)


def run_part(graph: ir.IntGraph, plan: Plan, part: Part, simulator: str, harness: Path,
             work_dir: Path) -> PartResult:
    """One part on the prebuilt harness (a process-pool task: everything it takes pickles)."""
    accelerator = Accelerator(graph, plan)
    # Elaborated as in the harness it describes (Amaranth warns about elaboratables never used).
    Fragment.get(accelerator, None)
    run = simulate(accelerator, graph, part.xq, simulator, work_dir / part.name, gap=part.gap,
                   stall=part.stall, seed=part.seed, build_dir=harness)
    return PartResult(part, run, simulation_seconds(work_dir / part.name / "results.xml"))


def simulation_seconds(results: Path) -> float:
    """The wall time of the cocotb test in a run's results.xml: the simulation itself, without
    the simulator's start-up (the same measure as bench/rtl_sim_speed.py)."""
    return sum(float(case.get("time", 0)) for case in ElementTree.parse(results).iter("testcase"))
