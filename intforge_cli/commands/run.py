"""`intforge run INT --data DATA.npz -o OUT.npz`: integer inputs and outputs of the golden model.

OUT holds `xq` (the quantized inputs) and `yq` (the integer outputs; `yq0`, `yq1`, ... in
graph order when there are several), as int64: the vectors a hardware test replays.
"""
from __future__ import annotations

import argparse

import numpy as np

from quant import evaluate, intfile
from quant.atomic import atomic_write, check_destination
from quant.data import load_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an integer model and save its integer inputs and outputs",
                       description="Quantize DATA's x with INT's input scale, run the golden model, "
                       "and write xq and yq (yq0, yq1, ... for several outputs) to OUT.npz.")
    p.add_argument("model", metavar="INT", help="intforge integer model")
    p.add_argument("--data", required=True, metavar="DATA.npz", help="float samples x")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help=".npz file to write")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    check_destination(args.output)
    graph = intfile.load(args.model)
    data = load_dataset(args.data, input_shape=graph.input_spec.shape)
    xq = evaluate.quantize_input(graph, data.x)
    values = evaluate.run(graph, xq, batch_size=256)
    keys = ["yq"] if len(graph.outputs) == 1 else [f"yq{i}" for i in range(len(graph.outputs))]
    arrays = {"xq": xq, **{key: values[name] for key, name in zip(keys, graph.outputs)}}
    with atomic_write(args.output) as f:
        np.savez(f, **arrays)
    print(f"wrote {args.output}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}")
    return 0
