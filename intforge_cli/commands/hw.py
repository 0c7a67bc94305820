"""`intforge hw INT -o BUILD [--target-cycles N | --multipliers N] [--config FILE]`: the
accelerator of an integer model, as Verilog plus the plan, model and report `sim` reads.

The plan balances the MAC layers' folds for a multiplier budget (default
`hw.balance.DEFAULT_MULTIPLIERS`, the 8 DSP blocks of an iCE40UP5K) or for a target number
of cycles per inference; a config file fixes chosen layers' folds:

    [layers."/conv1/Conv"]      # a Conv or Gemm node name (quoted: names have slashes)
    fold = [4, 2]               # P output channels x S inputs per cycle
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hw.balance import DEFAULT_MULTIPLIERS
from hw.build import VERILOG, write_build
from hw.fold import Fold
from hw.plan import Plan, check_supported, make_plan
from hw.report import Report
from intforge_cli.argtypes import add_budget
from quant import intfile, ir
from quant.config import read_layers
from quant.errors import DataError, ModelError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hw", help="generate the accelerator (Verilog) of an integer model",
                       description="Plan a streaming accelerator for INT (one engine per layer, "
                       "folds balanced for a multiplier budget or a target interval) and write "
                       "BUILD/top.v, model.int.onnx, plan.json and report.json.")
    p.add_argument("model", metavar="INT", help="intforge integer model")
    p.add_argument("-o", "--output", required=True, metavar="BUILD", help="build folder to write")
    add_budget(p, f"multiplier budget (default {DEFAULT_MULTIPLIERS})",
               "cycles per inference to reach with the fewest multipliers")
    p.add_argument("--config", metavar="FILE", help="TOML file of per-layer folds")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    graph = intfile.load(args.model)
    folds = load_folds(args.config, graph) if args.config else {}
    budget = ({"target_cycles": args.target_cycles} if args.target_cycles
              else {"multipliers": args.multipliers or DEFAULT_MULTIPLIERS})
    plan = plan_for(graph, budget, folds)
    report = write_build(args.output, graph, plan, budget)
    console = Console()
    console.print(layer_table(report, title=f"{args.model} -> {args.output}"))
    print(summary(report, Path(args.output)))
    return 0


def plan_for(graph: ir.IntGraph, budget: dict[str, int], folds: dict[str, Fold]) -> Plan:
    """`hw.plan.make_plan`, with a budget that cannot be met reported with its flag."""
    check_supported(graph)  # problems of the model itself, reported as they are
    try:
        return make_plan(graph, multipliers=budget.get("multipliers"),
                         target=budget.get("target_cycles"), folds=folds)
    except ModelError as e:  # hw.balance: too few multipliers, or an unreachable target
        flag = ", ".join(f"--{key.replace('_', '-')} {value}" for key, value in budget.items())
        if folds and "multipliers" in budget:
            fixed = sum(fold.outputs * fold.inputs for fold in folds.values())
            flag += f" (the config's folds take {fixed})"
        raise ModelError(f"{flag}: {e}") from None


def load_folds(path: str | os.PathLike[str], graph: ir.IntGraph) -> dict[str, Fold]:
    """Per-layer folds from a TOML config (`[layers."<name>"] fold = [P, S]`), checked
    against the graph's Conv and Gemm layers; every problem is a DataError naming the key."""
    layers = read_layers(path)
    mac_layers = [op.name for op in graph.ops if isinstance(op, (ir.Conv, ir.Gemm))]
    return {name: _fold(f"{path}: [layers.\"{name}\"]", name, table, mac_layers)
            for name, table in layers.items()}


def _fold(where: str, name: str, table: object, mac_layers: list[str]) -> Fold:
    if name not in mac_layers:
        raise DataError(f"{where}: the model has no Conv or Gemm layer of that name "
                        f"(its MAC layers: {', '.join(mac_layers) or 'none'})")
    if not isinstance(table, dict):
        raise DataError(f"{where} must be a table with the key fold")
    for key in table:
        if key != "fold":
            raise DataError(f"{where}: unknown key '{key}' (allowed: fold)")
    value = table.get("fold")
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise DataError(f"{where} fold must be [P, S], two positive integers, not {value!r}")
    return Fold(*value)


def layer_table(report: Report, title: str) -> Table:
    """One row per op: fold P x S (MAC layers) or input -> output lanes, multipliers, MACs,
    cycles per inference, latency (cycles), ROM bits of weights and biases."""
    table = Table(title=title, show_footer=True)
    footers = {"layer": f"{len(report.layers)} ops", "mults": str(report.multipliers),
               "MACs": f"{report.macs:,}", "cycles": f"II {report.initiation_interval:,}",
               "latency": str(report.pipeline_latency), "weight bits": f"{report.weight_bits:,}"}
    for column in ("layer", "op", "fold / lanes", "mults", "MACs", "cycles", "latency",
                   "weight bits"):
        left = column in ("layer", "op", "fold / lanes")
        table.add_column(column, footer=footers.get(column, ""),
                         justify="left" if left else "right", no_wrap=not left,
                         overflow="fold" if column == "layer" else "ellipsis")
    for layer in report.layers:
        shape = (f"{layer.fold[0]}x{layer.fold[1]}" if layer.fold
                 else f"{layer.in_lanes}->{layer.lanes}" if layer.cycles else "-")
        table.add_row(Text(layer.name), layer.op, shape, str(layer.multipliers or ""),
                      f"{layer.macs:,}" if layer.macs else "", f"{layer.cycles:,}",
                      str(layer.latency), f"{layer.weight_bits:,}" if layer.weight_bits else "")
    return table


def summary(report: Report, folder: Path) -> str:
    ratio = report.initiation_interval / max(report.ideal_cycles, 1)
    return (f"wrote {folder}: {VERILOG} ({os.path.getsize(folder / VERILOG):,} bytes); "
            f"{report.multipliers} multipliers, {report.macs:,} MACs per inference, "
            f"{report.initiation_interval:,} cycles per inference (ideal {report.ideal_cycles:,}, "
            f"{ratio:.2f}x), pipeline latency {report.pipeline_latency} cycles, "
            f"{report.weight_bits:,} bits of weights")
