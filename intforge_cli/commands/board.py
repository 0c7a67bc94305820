"""`intforge board NAME BUILD_OR_INT [-o DIR] [--multipliers N | --target-cycles N]
[--clock-mhz F] [--json]`: the accelerator on an FPGA board, synthesized, placed, routed
and packed with the open toolchain (`boards.build`).

BUILD_OR_INT is a build folder of `intforge hw` (its plan is used as is) or an integer
model (planned here for the board's DSP blocks). --multipliers or --target-cycles re-plan
either. Exit 0 when the design fits and meets timing at the chosen clock; 1 when it does
not fit (with a smaller fold to try), misses timing (with a clock to try) or a tool fails;
2 on bad input.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from boards.build import BOARDS, build_board
from boards.report import BoardReport, Usage
from hw.build import load_build
from hw.lower import Accelerator
from hw.plan import Plan
from intforge_cli.argtypes import add_budget, frequency
from intforge_cli.commands.hw import plan_for
from intforge_cli.output import print_json
from quant import intfile, ir
from quant.errors import DataError

EXIT_FAILED = 1
RESOURCES = (("luts", "LUTs"), ("dsps", "DSPs"), ("brams", "block RAMs"), ("sprams", "SPRAMs"))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("board", help="build the accelerator for an FPGA board (yosys, nextpnr)",
                       description="Synthesize, place, route and pack the accelerator behind "
                       "a UART link for board NAME; report resources, Fmax and inferences per "
                       "second.")
    p.add_argument("board", metavar="NAME", choices=list(BOARDS),
                   help=f"the board: {', '.join(BOARDS)}")
    p.add_argument("source", metavar="BUILD_OR_INT",
                   help="build folder written by 'intforge hw', or an intforge integer model")
    p.add_argument("-o", "--output", metavar="DIR", help="where the bitstream and tool logs go "
                   "(default: BUILD/NAME, or INT's name with -NAME beside it)")
    add_budget(p, "re-plan for a multiplier budget (default for an integer model: the "
               "board's DSP blocks)", "re-plan for a number of cycles per inference")
    p.add_argument("--clock-mhz", type=frequency, metavar="F",
                   help="clock from the board's PLL (default: the board's oscillator)")
    p.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    graph, plan, out = load_design(args)
    accelerator = Accelerator(graph, plan)
    report = build_board(args.board, accelerator, out, args.clock_mhz, interval=plan.interval)
    title = f"{args.source} on {args.board} ({report.device})"
    Console().print(resource_table(report, title=title))
    print(summary(report))
    problem = verdict(report, plan)
    if problem:
        print(problem)
    if args.json:
        print_json(report.as_dict())
    return EXIT_FAILED if problem else 0


def load_design(args: argparse.Namespace) -> tuple[ir.IntGraph, Plan, Path]:
    """(graph, plan, output folder) from a build folder or an integer model."""
    source = Path(args.source)
    budget = ({"target_cycles": args.target_cycles} if args.target_cycles else
              {"multipliers": args.multipliers} if args.multipliers else None)
    if source.is_dir():
        build = load_build(source)
        graph, plan = build.graph, build.plan
        out = source / args.board
    elif source.is_file():
        graph, plan = intfile.load(source), None
        out = source.with_name(f"{source.name.split('.')[0]}-{args.board}")
    else:
        raise DataError(f"{source}: no such build folder or integer model")
    if budget is not None or plan is None:
        plan = plan_for(graph, budget or {"multipliers": BOARDS[args.board].dsps}, {})
    return graph, plan, Path(args.output) if args.output else out


def resource_table(report: BoardReport, title: str) -> Table:
    table = Table(title=title)
    for column in ("resource", "used", "available", "use"):
        table.add_column(column, justify="left" if column == "resource" else "right")
    for key, label in RESOURCES:
        usage = getattr(report, key)
        if usage is not None:
            table.add_row(label, f"{usage.used:,}", f"{usage.available:,}", percent(usage))
    if report.flip_flops is not None:
        table.add_row("flip-flops", f"{report.flip_flops:,}", "", "")
    return table


def percent(usage: Usage) -> str:
    return f"{100 * usage.used / max(usage.available, 1):.0f}%"


def summary(report: BoardReport) -> str:
    parts = []
    if report.multipliers is not None:
        parts.append(f"multipliers: {report.multipliers.dsp} on DSP blocks, "
                     f"{report.multipliers.logic} in logic")
    if report.fmax_mhz is not None:
        parts.append(f"Fmax {report.fmax_mhz:.1f} MHz, timing "
                     f"{'met' if report.timing_met else 'NOT met'} at {report.clock_mhz:g} MHz")
    if report.inferences_per_s is not None:
        parts.append(f"{report.interval:,} cycles per inference: "
                     f"{report.inferences_per_s:,.0f} inferences/s at Fmax, "
                     f"{report.clock_mhz * 1e6 / report.interval:,.0f} at {report.clock_mhz:g} MHz")
    if report.bitstream is not None:
        parts.append(f"bitstream {report.bitstream}")
    return "\n".join(parts)


def verdict(report: BoardReport, plan: Plan) -> str | None:
    """None when the design fits and meets timing; else what failed and what to try."""
    if not report.fits:
        folder = next((str(path.parent) for path in report.logs.values()), "")
        over = [f"{label} {u.used:,}/{u.available:,} ({percent(u)})" for key, label in RESOURCES
                if (u := getattr(report, key)) is not None and not u.fits]
        if not over:
            return f"the build failed: {report.error or 'no bitstream'} (logs in {folder})"
        smaller = plan.multipliers // 2
        hint = (f"try a smaller fold, e.g. --multipliers {smaller}" if smaller >= 1 else
                "the model is too large for this board at any fold")
        return f"does not fit the {report.device}: {', '.join(over)}; {hint} (logs in {folder})"
    if not report.timing_met:
        fmax = report.fmax_mhz or 0.0
        return (f"timing not met at {report.clock_mhz:g} MHz (Fmax {fmax:.1f} MHz): "
                f"try --clock-mhz {max(math.floor(fmax), 1)}")
    return None
