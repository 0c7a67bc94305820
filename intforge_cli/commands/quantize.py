"""`intforge quantize MODEL.onnx --calib CALIB.npz -o OUT [options]`: write the integer model."""
from __future__ import annotations

import argparse
import os
import sys

from quant import intfile
from quant.atomic import check_destination
from quant.config import load_config
from quant.data import load_dataset
from quant.ir import IntGraph
from quant.options import MAX_BITS, MIN_BITS, CalibMethod, QuantOptions, ScaleMode
from quant.pipeline import quantize_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="turn a float ONNX model into an integer model",
                       description="Calibrate MODEL on CALIB and write the fully integer model to OUT.")
    p.add_argument("model", metavar="MODEL.onnx", help="float ONNX model")
    p.add_argument("--calib", required=True, metavar="CALIB.npz", help="calibration samples x")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="integer model to write")
    add_options(p)
    p.set_defaults(command=main)


def add_options(p: argparse.ArgumentParser) -> None:
    """The quantization options, shared by every command that quantizes."""
    p.add_argument("--weight-bits", type=bits, default=8, metavar="N", help="weight bits (default 8)")
    p.add_argument("--act-bits", type=bits, default=8, metavar="N", help="activation bits (default 8)")
    p.add_argument("--calibration", choices=[m.value for m in CalibMethod], default="minmax",
                   help="how ranges are chosen from calibration statistics (default minmax)")
    p.add_argument("--scale", choices=[m.value for m in ScaleMode], default="dyadic",
                   help="dyadic: multiplier and shift; pow2: shift only (default dyadic)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per layer, "
                   "not per output channel")
    p.add_argument("--config", metavar="FILE", help="TOML file of per-layer bit widths")


def bits(text: str) -> int:
    """argparse type of a bit width, so that a bad one is a usage error naming the flag."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not MIN_BITS <= value <= MAX_BITS:
        raise argparse.ArgumentTypeError(f"must be an integer from {MIN_BITS} to {MAX_BITS}, not {text!r}")
    return value


def options_from(args: argparse.Namespace) -> QuantOptions:
    return QuantOptions(weight_bits=args.weight_bits, act_bits=args.act_bits,
                        scale=ScaleMode(args.scale), per_channel=not args.per_tensor,
                        calibration=CalibMethod(args.calibration),
                        layers=load_config(args.config) if args.config else {})


def summary(graph: IntGraph, options: QuantOptions, path: str, samples: int) -> str:
    return (f"wrote {path}: {len(graph.ops)} integer ops, W{options.weight_bits}A{options.act_bits} "
            f"{options.scale.value} {'per-channel' if options.per_channel else 'per-tensor'}, "
            f"{options.calibration.value} calibration on {samples} samples, "
            f"{os.path.getsize(path)} bytes")


def main(args: argparse.Namespace) -> int:
    check_destination(args.output)
    options = options_from(args)
    calib = load_dataset(args.calib)
    graph = quantize_model(args.model, calib, options, progress=sys.stderr.isatty())
    intfile.save(graph, args.output)
    print(summary(graph, options, args.output, len(calib)))
    return 0
