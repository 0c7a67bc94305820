"""`intforge sim BUILD --data DATA.npz [...]`: run the built accelerator in an RTL simulator
and compare every output element with the golden model.

The accelerator is rebuilt from BUILD's model and plan and checked to be top.v byte for
byte; DATA's x is quantized with the model's input scale; the samples stream through the
design with random input gaps and output backpressure (`sim.jobs`), split across `--jobs`
simulator processes, and a full-rate run measures the steady-state cycles per inference.
On a mismatch, `sim.diagnose` names the first diverging layer, channel and position and
writes a reproducer into BUILD/repro/. Exit 0 when everything matches, 1 on any
mismatch, 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hw.build import Build, check_verilog, load_build
from intforge_cli.argtypes import positive, probability
from intforge_cli.output import print_json
from quant import evaluate
from quant.data import load_dataset
from sim import jobs
from sim.diagnose import MISSING, investigate, mismatch_json
from sim.runner import SIMULATORS

EXIT_MISMATCH = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="simulate a build's Verilog against the golden model",
                       description="Stream DATA through the accelerator in BUILD on an RTL "
                       "simulator, with random input gaps and output backpressure, and compare "
                       "every output element with the golden model.")
    p.add_argument("build", metavar="BUILD", help="build folder written by 'intforge hw'")
    p.add_argument("--data", required=True, metavar="DATA.npz", help="float samples x")
    p.add_argument("--limit", type=positive, metavar="N", help="only the first N samples")
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator",
                   help="RTL simulator (default verilator)")
    p.add_argument("--jobs", type=positive, default=1, metavar="N",
                   help="simulator processes to split the samples across (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random gaps "
                   "and backpressure (default 0)")
    p.add_argument("--gap", type=probability, default=jobs.DEFAULT_GAP, metavar="P",
                   help=f"probability of an idle input cycle before each beat "
                   f"(default {jobs.DEFAULT_GAP})")
    p.add_argument("--stall", type=probability, default=jobs.DEFAULT_STALL, metavar="P",
                   help=f"probability that the output is not ready in a cycle "
                   f"(default {jobs.DEFAULT_STALL})")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    build = load_build(args.build)
    data = load_dataset(args.data, input_shape=build.graph.input_spec.shape)
    xq = evaluate.quantize_input(build.graph, data.x[:args.limit])
    check_verilog(build)
    parts = jobs.split(xq, args.jobs, gap=args.gap, stall=args.stall, seed=args.seed)
    with _progress(sys.stderr.isatty()) as progress:
        task = progress.add_task(f"building the {args.simulator} harness", total=None)
        harness = jobs.prepare(build.graph, build.plan, parts, args.simulator)
        progress.update(task, description=f"simulating on {args.simulator}",
                        total=sum(len(p.xq) for p in parts))
        result = jobs.run_parts(build.graph, build.plan, parts, args.simulator, harness,
                                build.folder / "sim" / args.simulator, jobs=args.jobs,
                                on_done=lambda done: progress.advance(task, len(done.part.xq)))
    for line in summary(result, args.simulator, args.jobs):
        print(line)
    divergence = _explain(build, result, args.simulator) if result.mismatches else None
    if args.json:
        print_json({**as_json(result, args.simulator, args.jobs), "divergence": divergence})
    return EXIT_MISMATCH if result.mismatches else 0


def summary(result: jobs.SimResult, simulator: str, processes: int) -> list[str]:
    timing = result.timing
    return [
        f"{simulator}: {result.samples} samples, {result.checked:,} output elements checked "
        f"(a full-rate run of {len(result.parts[-1].part.xq)} included), "
        f"{result.mismatches} mismatches",
        f"cycles per inference {timing.cycles_per_sample:g} at full rate (planned interval "
        f"{result.initiation_interval:,}), latency {timing.latency:,} cycles; "
        f"{result.cycles:,} cycles simulated at {result.cycles_per_second:,.0f} cycles/s "
        f"({result.seconds:.1f} s of simulation; {result.wall_seconds:.1f} s wall time in "
        f"{processes} process{'es' if processes > 1 else ''})",
    ]


def as_json(result: jobs.SimResult, simulator: str, processes: int) -> dict:
    failure = result.first_failure()
    first = None if failure is None else mismatch_json(failure[0].part, failure[1])
    return {"simulator": simulator, "jobs": processes, "samples": result.samples,
            "checked": result.checked, "mismatches": result.mismatches, "first_mismatch": first,
            "cycles_per_inference": result.timing.cycles_per_sample,
            "initiation_interval": result.initiation_interval,
            "latency": result.timing.latency, "sim_cycles": result.cycles,
            "sim_seconds": result.seconds, "sim_cycles_per_second": result.cycles_per_second,
            "wall_seconds": result.wall_seconds}


def _explain(build: Build, result: jobs.SimResult, simulator: str) -> dict | None:
    """Print the first mismatch and its diagnosis; write BUILD/repro/. Returns the
    diagnosis as JSON (None when no layer diverges on replay)."""
    part, mismatch = result.first_failure()
    got = mismatch.actual if mismatch.actual != MISSING else "nothing (the output ended early)"
    print(f"first mismatch: sample {part.part.offset + mismatch.sample} ({part.part.name} run), "
          f"output element {mismatch.element}: expected {mismatch.expected}, got {got}")
    print("diagnosing: simulating the accelerator cut after each layer ...", flush=True)
    repro = investigate(build.graph, build.graph, build.plan, part, mismatch, simulator,
                        build.folder / "repro")
    if repro.divergence is None:
        print("no layer diverges when the failing samples are replayed on their own "
              "(a timing-dependent failure?)")
    else:
        print(repro.divergence)
    print(f"reproducer: {repro.folder}/ (sample.npz replays with 'intforge sim {build.folder} "
          f"--data {repro.folder / 'sample.npz'}'; waveform {repro.waves.name})")
    return None if repro.divergence is None else repro.divergence.to_json()


@contextmanager
def _progress(show: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr when someone watches; otherwise one that draws nothing."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=Console(stderr=True), disable=not show,
                        transient=True)
    with progress:
        yield progress
