"""`intforge check INT --data DATA.npz [--layers] [--json]`: golden model vs onnxruntime.

Exports INT to all-integer ONNX, runs both executions on the same quantized inputs and
compares every output element (every intermediate tensor with --layers). Exit 0 when all
agree, 1 on any mismatch, 2 on bad input.
"""
from __future__ import annotations

import argparse

from intforge_cli.output import print_json
from quant import intfile
from quant.check import check
from quant.data import load_dataset

EXIT_MISMATCH = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="compare the golden model with onnxruntime on the ONNX export",
                       description="Run the golden model and onnxruntime (on the all-integer "
                       "export) on DATA and compare every output element, bit for bit.")
    p.add_argument("model", metavar="INT", help="intforge integer model")
    p.add_argument("--data", required=True, metavar="DATA.npz", help="float samples x")
    p.add_argument("--layers", action="store_true", help="compare every intermediate tensor too")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    graph = intfile.load(args.model)
    data = load_dataset(args.data, input_shape=graph.input_spec.shape)
    report = check(graph, data.x, layers=args.layers)
    print(report)
    if args.json:
        first = report.first
        print_json({"samples": report.samples, "checked": report.checked,
                    "mismatches": report.mismatches, "tensors": len(report.by_tensor),
                    "first": None if first is None else {
                        "tensor": first.tensor, "op": first.op, "index": list(first.index),
                        "golden": first.golden, "onnx": first.onnx}})
    return 0 if report.ok else EXIT_MISMATCH
