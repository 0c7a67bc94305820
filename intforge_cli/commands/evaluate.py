"""`intforge eval MODEL --data DATA.npz [--json]`: accuracy of a float or integer model."""
from __future__ import annotations

import argparse

from intforge_cli.models import (FloatModel, accuracy, class_count, is_integer_model, labels,
                                 run_int)
from intforge_cli.output import percent, print_json
from quant import intfile
from quant.data import load_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy of a float (.onnx) or integer model on a dataset",
                       description="Run MODEL on DATA and print its accuracy. A float ONNX model "
                       "runs in onnxruntime as is; an integer model runs in the golden model.")
    p.add_argument("model", metavar="MODEL", help="float .onnx model or intforge integer model")
    p.add_argument("--data", required=True, metavar="DATA.npz", help="x (and labels y) to evaluate")
    p.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    p.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    if is_integer_model(args.model):
        kind, graph = "integer", intfile.load(args.model)
        data = load_dataset(args.data, input_shape=graph.input_spec.shape)
        first = run_int(graph, data)[graph.outputs[0]]
    else:
        kind, model = "float", FloatModel(args.model)
        data = load_dataset(args.data, input_shape=model.input_shape)
        first = model.outputs(data.x)[0]
    acc = accuracy(labels(first), data, class_count(first))
    score = (f"accuracy {percent(acc.value)} ({acc.correct}/{acc.n})" if acc
             else f"no labels (y) in {args.data}, so no accuracy")
    print(f"{args.model} ({kind}) on {len(data)} samples: {score}")
    if args.json:
        print_json({"model": str(args.model), "kind": kind, "n": len(data),
                    "accuracy": acc.value if acc else None, "correct": acc.correct if acc else None})
    return 0
