"""`intforge demo [--out DIR]`: the whole flow on the bundled digits CNN, with a summary.

quantize (W8A8, dyadic, per-channel, min/max calibration) -> save and reload the integer
model -> float accuracy (onnxruntime on the original file) and integer accuracy (golden
model) on the held-out test set -> per-layer comparison and report -> the accelerator for
the default multiplier budget (`hw.balance.DEFAULT_MULTIPLIERS`), written as a build folder
-> its Verilog simulated on Verilator on the first `SIM_SAMPLES` test images, every output
element compared with the golden model. The Verilator build dominates the time (~30 s);
it is cached, so a second demo skips it.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hw.balance import DEFAULT_MULTIPLIERS
from hw.build import write_build
from hw.plan import make_plan
from hw.report import Report
from intforge_cli.comparison import compare
from intforge_cli.output import percent
from intforge_cli.stats import layer_stats, totals
from quant import evaluate, intfile
from quant.data import load_dataset
from quant.errors import DataError
from quant.ir import IntGraph
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from sim import jobs

MODELS = Path(__file__).resolve().parents[2] / "models"
"""The repository's models/ folder: the demo runs from a source checkout."""
SIM_SAMPLES = 20
SIMULATOR = "verilator"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole flow on the bundled digits model",
                       description="Quantize models/digits_cnn.onnx (W8A8 dyadic), evaluate the "
                       "float and integer models on models/digits_test.npz, generate the "
                       f"accelerator for {DEFAULT_MULTIPLIERS} multipliers and simulate it on "
                       f"{SIM_SAMPLES} test images ({SIMULATOR}); write the integer model, a "
                       "comparison report and the build folder into DIR.")
    p.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    from intforge_cli.report import write_report  # matplotlib is slow to import; only here

    model, calib_path, test_path = (bundled(n) for n in ("digits_cnn.onnx", "digits_calib.npz",
                                                          "digits_test.npz"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = QuantOptions()
    int_path = out / "digits_cnn_w8a8.onnx"
    progress = sys.stderr.isatty()  # stage lines are for people watching, not for logs
    intfile.save(quantize_model(model, load_dataset(calib_path), options, progress), int_path)
    graph = intfile.load(int_path)
    test = load_dataset(test_path)
    result = compare(model, graph, test)
    index = write_report(result, out / "report", "intforge demo: digits CNN, W8A8 dyadic")

    report, sim = hardware(graph, test.x[:SIM_SAMPLES], out / "build", progress)

    total = totals(layer_stats(graph))
    worst = min(result.layers, key=lambda l: l.sqnr_db, default=None)
    table = Table(title="intforge demo: digits CNN, W8A8 dyadic per-channel", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in (
        ("float accuracy (onnxruntime)", percent(result.float_accuracy)),
        ("integer accuracy (golden model)", percent(result.int_accuracy)),
        ("argmax agreement", f"{percent(result.agreement)} of {result.n} test samples"),
        ("integer ops", str(total.ops)),
        ("MACs per sample", f"{total.macs:,}"),
        ("parameters", f"{total.params:,} ({total.param_bytes:,} bytes packed)"),
        ("widest accumulator", f"{total.max_acc_bits} bits"),
        ("lowest layer SQNR", f"{worst.sqnr_db:.1f} dB at {worst.name}"
         if worst and math.isfinite(worst.sqnr_db) else "-"),
        ("multipliers", f"{report.multipliers} (budget {DEFAULT_MULTIPLIERS})"),
        ("cycles per inference", f"{sim.timing.cycles_per_sample:,.0f} measured on {SIMULATOR} "
         f"(planned {report.initiation_interval:,}; ideal {report.ideal_cycles:,} = MACs / "
         f"multipliers)"),
        ("RTL vs golden model", f"{sim.mismatches} mismatches in {sim.checked:,} output elements "
         f"({sim.samples} test images, random stalls, plus a full-rate run)"),
        ("integer model", f"{int_path} ({os.path.getsize(int_path):,} bytes)"),
        ("report", str(index)),
        ("accelerator", f"{out / 'build'} (top.v, report.json)"),
    ):
        table.add_row(key, value)
    Console().print(table)
    return 1 if sim.mismatches else 0


def hardware(graph: IntGraph, x: np.ndarray, folder: Path,
             progress: bool) -> tuple[Report, jobs.SimResult]:
    """`intforge hw` (default budget) into `folder`, then `intforge sim` on `x`."""
    def stage(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    stage(f"hw: planning and writing the accelerator for {DEFAULT_MULTIPLIERS} multipliers")
    plan = make_plan(graph, multipliers=DEFAULT_MULTIPLIERS)
    report = write_build(folder, graph, plan, {"multipliers": DEFAULT_MULTIPLIERS})
    parts = jobs.split(evaluate.quantize_input(graph, x), 1, gap=jobs.DEFAULT_GAP,
                       stall=jobs.DEFAULT_STALL, seed=0)
    stage(f"sim: building the {SIMULATOR} model of the design (cached after the first demo)")
    harness = jobs.prepare(graph, plan, parts, SIMULATOR)
    stage(f"sim: streaming {len(x)} test images through it")
    return report, jobs.run_parts(graph, plan, parts, SIMULATOR, harness, folder / "sim" / SIMULATOR)


def bundled(name: str) -> Path:
    path = MODELS / name
    if not path.is_file():
        raise DataError(f"{path}: bundled demo file not found (the demo runs from a source "
                        f"checkout of intforge)")
    return path
