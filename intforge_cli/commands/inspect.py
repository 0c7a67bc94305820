"""`intforge inspect INT`: a table of the integer model's layers and their arithmetic."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from intforge_cli.stats import layer_stats, totals
from quant import intfile
from quant.data import format_shape
from quant.ir import IntGraph


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="list an integer model's layers, types, scales and costs",
                       description="Per layer: operator, name, shapes (per sample), weight bits / "
                       "output type, output scale and zero point, multipliers M and shifts n, "
                       "accumulator bits (max over channels), MACs per sample; then totals.")
    p.add_argument("model", metavar="INT", help="intforge integer model")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    graph = intfile.load(args.model)
    console = Console()
    console.print(layer_table(graph, title=str(args.model)))
    return 0


def layer_table(graph: IntGraph, title: str) -> Table:
    table = Table(title=title, show_footer=True)
    stats = layer_stats(graph)
    total = totals(stats)
    spec = graph.input_spec
    footers = {"name": f"{total.ops} ops", "acc bits": _opt(total.max_acc_bits),
               "MACs": f"{total.macs:,}", "params": f"{total.params:,} ({total.param_bytes:,} B)"}
    for column in ("op", "name", "shape in -> out", "W bits / out", "scale (zero point)",
                   "requant", "acc bits", "MACs", "params"):
        right = column in ("acc bits", "MACs", "params")
        table.add_column(column, footer=footers.get(column, ""), justify="right" if right else "left")
    table.add_row("input", Text(graph.input), f"-> {format_shape(spec.shape)}", f"- / {spec.itype}",
                  f"{spec.qparams.scale:.4g} ({spec.qparams.zero_point})", "", "", "", "",
                  end_section=True)
    for s in stats:
        table.add_row(s.op, Text(s.name), f"{s.inputs} -> {s.output}",
                      f"{_opt(s.weight_bits)} / {s.act_type}", f"{s.scale:.4g} ({s.zero_point})",
                      s.requant, _opt(s.acc_bits), f"{s.macs:,}" if s.macs else "",
                      f"{s.params:,}" if s.params else "")
    return table


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)
