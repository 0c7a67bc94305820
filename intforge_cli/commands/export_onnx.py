"""`intforge export-onnx INT -o OUT.onnx`: the integer model as standard, float-free ONNX.

The export takes the quantized input `xq` (what `intforge run` writes) and gives the integer
outputs; onnxruntime runs it bit-exactly equal to the golden model (`intforge check`).
"""
from __future__ import annotations

import argparse

from quant import intfile
from quant.atomic import check_destination
from quant.export import save_onnx


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="export an integer model to all-integer standard ONNX",
                       description="Write INT as an ONNX model of the default domain with no "
                       "floating-point tensor, which onnxruntime runs bit-exactly.")
    p.add_argument("model", metavar="INT", help="intforge integer model")
    p.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="ONNX file to write")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    check_destination(args.output)
    graph = intfile.load(args.model)
    model = save_onnx(graph, args.output)
    print(f"wrote {args.output}: {len(model.graph.node)} ONNX nodes, opset "
          f"{model.opset_import[0].version}, no float tensors")
    return 0
