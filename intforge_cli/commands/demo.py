"""`intforge demo [--out DIR]`: the whole flow on the bundled digits CNN, with a summary.

quantize (W8A8, dyadic, per-channel, min/max calibration) -> save and reload the integer
model -> float accuracy (onnxruntime on the original file) and integer accuracy (golden
model) on the held-out test set -> per-layer comparison and report.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from intforge_cli.comparison import compare
from intforge_cli.output import percent
from intforge_cli.stats import layer_stats, totals
from quant import intfile
from quant.data import load_dataset
from quant.errors import DataError
from quant.options import QuantOptions
from quant.pipeline import quantize_model

MODELS = Path(__file__).resolve().parents[2] / "models"
"""The repository's models/ folder: the demo runs from a source checkout."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole flow on the bundled digits model",
                       description="Quantize models/digits_cnn.onnx (W8A8 dyadic), evaluate the "
                       "float and integer models on models/digits_test.npz, and write the integer "
                       "model and a comparison report into DIR.")
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
    result = compare(model, graph, load_dataset(test_path))
    index = write_report(result, out / "report", "intforge demo: digits CNN, W8A8 dyadic")

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
        ("integer model", f"{int_path} ({os.path.getsize(int_path):,} bytes)"),
        ("report", str(index)),
    ):
        table.add_row(key, value)
    Console().print(table)
    return 0


def bundled(name: str) -> Path:
    path = MODELS / name
    if not path.is_file():
        raise DataError(f"{path}: bundled demo file not found (the demo runs from a source "
                        f"checkout of intforge)")
    return path
