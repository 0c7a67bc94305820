"""`intforge compare FLOAT.onnx INT --data DATA.npz [--json] [--report DIR]`: where the
integer model departs from the float one, prediction by prediction and layer by layer."""
from __future__ import annotations

import argparse
import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from intforge_cli.comparison import Comparison, compare
from intforge_cli.output import percent, print_json
from quant import intfile
from quant.data import load_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare a float model with its integer model",
                       description="Argmax agreement, both accuracies, and per-layer SQNR and "
                       "maximum error of the dequantized integer tensors against the float ones.")
    p.add_argument("float_model", metavar="FLOAT.onnx", help="the float ONNX model")
    p.add_argument("int_model", metavar="INT", help="its intforge integer model")
    p.add_argument("--data", required=True, metavar="DATA.npz", help="samples x (and labels y)")
    p.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    p.add_argument("--report", metavar="DIR", help="write PNG plots and index.md into DIR")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    graph = intfile.load(args.int_model)
    data = load_dataset(args.data, input_shape=graph.input_spec.shape)
    result = compare(args.float_model, graph, data)
    Console().print(layer_table(result))
    print(headline(result))
    if args.report:
        from intforge_cli.report import write_report  # matplotlib is slow to import; only here

        index = write_report(result, args.report, f"{args.float_model} vs {args.int_model}")
        print(f"report: {index}")
    if args.json:
        print_json(result.as_json())
    return 0


def headline(result: Comparison) -> str:
    return (f"{result.n} samples: argmax agreement {percent(result.agreement)}, float accuracy "
            f"{percent(result.float_accuracy)}, integer accuracy {percent(result.int_accuracy)}")


def layer_table(result: Comparison) -> Table:
    table = Table(title="float vs integer, per tensor")
    for column in ("tensor", "op", "SQNR dB", "max abs error"):
        table.add_column(column, justify="left" if column in ("tensor", "op") else "right")
    for layer in result.layers:
        sqnr = f"{layer.sqnr_db:.2f}" if math.isfinite(layer.sqnr_db) else str(layer.sqnr_db)
        table.add_row(Text(layer.name), layer.op, sqnr, f"{layer.max_abs_error:.4g}")
    return table
