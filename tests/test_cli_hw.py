"""`intforge hw`, `intforge sim` and the diagnosis of a failing hardware run.

The commands run as a user runs them (a subprocess) and are judged by exit code, output
and the files they leave. Numbers are checked against independent references: MACs from the
float ONNX model's weight shapes, cycles from the fold formula ceil(N/P) * ceil(K/S), the
Verilog against an Accelerator planned here, outputs against the golden model. The
diagnosis is tested by injecting a fault: the hardware is built from a graph with one
changed convolution weight and compared with the unchanged graph; where it must diverge
first is computed here with the golden model on both graphs.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cliutil import REPO_ROOT, assert_user_error, intforge, last_json
from hw import build as hw_build
from hw.emit import verilog
from hw.fold import Fold
from hw.lower import Accelerator
from hw.plan import make_plan
from hw.streams import to_stream_order
from intforge_cli.commands.hw import load_folds
from intforge_cli.main import main
from quant import evaluate, intfile, ir
from quant.data import Dataset
from quant.errors import DataError
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from quantized import model_path, quantized
from sim import diagnose as sim_diagnose
from sim import jobs as sim_jobs
from sim.diagnose import locate, sub_graph
from sim.jobs import TIMING_SAMPLES

TEST = REPO_ROOT / "models" / "digits_test.npz"
BUILD_FILES = {"top.v", "model.int.onnx", "plan.json", "report.json"}
DEFAULT_BUDGET = 8  # documented default of `intforge hw` (hw.balance.DEFAULT_MULTIPLIERS)
BUDGET = 32  # the MLP builds here: 208 cycles per image instead of 1024, quick to simulate
SIM_IMAGES = 10


@pytest.fixture(scope="module")
def mlp_int(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("int") / "mlp_int.onnx"
    intfile.save(quantized("mlp"), path)
    return path


@pytest.fixture(scope="module")
def mlp_build(tmp_path_factory, mlp_int) -> Path:
    folder = tmp_path_factory.mktemp("hw") / "build"
    result = intforge("hw", mlp_int, "-o", folder, "--multipliers", BUDGET)
    assert result.returncode == 0, result.stderr
    return folder


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _float_gemm_shapes(path: Path) -> list[tuple[int, int]]:
    """(outputs N, inputs K) of every Gemm of the float ONNX model, from its initializers."""
    model = onnx.load(path)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    shapes = []
    for node in model.graph.node:
        if node.op_type == "Gemm":
            w = weights[node.input[1]]
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            shapes.append(w.shape if trans_b else w.shape[::-1])
    return shapes


# ---- hw ---------------------------------------------------------------------------------
def test_hw_writes_a_build_whose_report_matches_the_plan(mlp_build, mlp_int):
    assert {p.name for p in mlp_build.iterdir()} == BUILD_FILES  # no temporary files left
    assert (mlp_build / "model.int.onnx").read_bytes() == mlp_int.read_bytes()
    assert "module top(" in (mlp_build / "top.v").read_text()
    report = _json(mlp_build / "report.json")
    graph = intfile.load(mlp_int)
    plan = make_plan(graph, multipliers=BUDGET)

    # MACs from the float model's weights (batch 1: one dot product per output)
    shapes = _float_gemm_shapes(model_path("mlp"))
    assert report["macs"] == sum(n * k for n, k in shapes) == plan.macs == 6464
    assert report["multipliers"] == plan.multipliers <= BUDGET
    assert report["ideal_cycles"] == math.ceil(report["macs"] / report["multipliers"])
    gemms = [layer for layer in report["layers"] if layer["op"] == "Gemm"]
    assert [(layer["name"], layer["fold"]) for layer in report["layers"]] == [
        (s.op.name, [s.fold.outputs, s.fold.inputs] if s.fold else None) for s in plan.stages]
    for layer, (n, k) in zip(gemms, shapes):
        p, s = layer["fold"]
        assert layer["cycles"] == math.ceil(n / p) * math.ceil(k / s)
        assert layer["multipliers"] == p * s and layer["macs"] == n * k
        assert layer["latency"] > 0 and layer["weight_bits"] > n * k
    assert report["multipliers"] == sum(layer["multipliers"] for layer in gemms)
    # the slowest engine, or the one-element-per-beat input (64) and output (10) streams
    interval = max([layer["cycles"] for layer in report["layers"]] + [64, 10])
    assert report["initiation_interval"] == report["estimated_cycles_per_inference"] == interval
    assert report["initiation_interval"] == plan.interval
    assert report["weight_memory_bits"] == sum(layer["weight_bits"] for layer in report["layers"])
    assert report["budget"] == {"multipliers": BUDGET}
    stages = _json(mlp_build / "plan.json")["stages"]
    assert [s["fold"] for s in stages] == [layer["fold"] for layer in report["layers"]]


def test_hw_default_budget_and_printout(tmp_path, mlp_int):
    result = intforge("hw", mlp_int, "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    report = _json(tmp_path / "b" / "report.json")
    assert report["budget"] == {"multipliers": DEFAULT_BUDGET}
    assert report["multipliers"] <= DEFAULT_BUDGET
    assert report["initiation_interval"] == make_plan(intfile.load(mlp_int)).interval
    for layer in report["layers"]:
        assert layer["name"] in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"wrote {tmp_path / 'b'}: top.v")
    assert f"{report['multipliers']} multipliers" in summary
    assert f"{report['initiation_interval']:,} cycles per inference" in summary


def test_hw_target_cycles(tmp_path, mlp_int):
    result = intforge("hw", mlp_int, "-o", tmp_path / "b", "--target-cycles", "300")
    assert result.returncode == 0, result.stderr
    report = _json(tmp_path / "b" / "report.json")
    assert report["budget"] == {"target_cycles": 300}
    assert report["initiation_interval"] <= 300  # reachable: no engine without MACs is slower
    # each layer gets the fewest multipliers that reach the target (brute force over P, S)
    shapes = _float_gemm_shapes(model_path("mlp"))
    for layer, (n, k) in zip([l for l in report["layers"] if l["fold"]], shapes):
        fewest = min(p * s for p in range(1, n + 1) for s in range(1, k + 1)
                     if math.ceil(n / p) * math.ceil(k / s) <= 300)
        assert layer["multipliers"] == fewest and layer["cycles"] <= 300


def test_hw_is_deterministic(tmp_path, mlp_int, mlp_build):
    again = tmp_path / "again"
    assert intforge("hw", mlp_int, "-o", again, "--multipliers", BUDGET,
                    hash_seed="12345").returncode == 0
    for name in BUILD_FILES:
        assert (again / name).read_bytes() == (mlp_build / name).read_bytes(), name


def test_config_fold_reaches_report_and_verilog(tmp_path, mlp_int, mlp_build):
    config = tmp_path / "folds.toml"
    config.write_text('[layers."/net/net.1/Gemm"]\nfold = [2, 8]\n')
    out = tmp_path / "b"
    result = intforge("hw", mlp_int, "-o", out, "--config", config, "--multipliers", BUDGET)
    assert result.returncode == 0, result.stderr
    layer = next(l for l in _json(out / "report.json")["layers"] if l["name"] == "/net/net.1/Gemm")
    assert layer["fold"] == [2, 8] and layer["cycles"] == (64 // 2) * (64 // 8)
    graph = intfile.load(mlp_int)
    plan = make_plan(graph, multipliers=BUDGET, folds={"/net/net.1/Gemm": Fold(2, 8)})
    top = (out / "top.v").read_text()
    assert top == verilog(Accelerator(graph, plan))
    assert top != (mlp_build / "top.v").read_text()


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _gated_int(tmp: Path) -> Path:
    path = tmp / "gated_int.onnx"
    intfile.save(quantized("gated"), path)
    return path


HW_ERRORS = [  # (model maker over (tmp_path, mlp_int), extra args, words in the message)
    pytest.param(lambda t, m: model_path("mlp"), [], ["mlp.onnx", "not an intforge integer model"],
                 id="float-model"),
    pytest.param(lambda t, m: _write(t / "junk.onnx", b"\x08\x96junk" * 30), [],
                 ["junk.onnx", "not an ONNX file"], id="corrupt-model"),
    pytest.param(lambda t, m: t / "none.onnx", [], ["none.onnx", "cannot read"],
                 id="missing-model"),
    pytest.param(lambda t, m: _gated_int(t), [], ["no hardware engine", "Softmax"],
                 id="op-without-engine"),
    pytest.param(lambda t, m: m, ["--multipliers", "2"], ["--multipliers 2", "3 MAC layers"],
                 id="budget-too-small"),
    pytest.param(lambda t, m: m, ["--multipliers", "0"], ["--multipliers", "positive integer"],
                 id="budget-zero"),
    pytest.param(lambda t, m: m, ["--multipliers", "8", "--target-cycles", "9"],
                 ["not allowed with"], id="both-budgets"),
    pytest.param(lambda t, m: m, ["--config", 'CONFIG:[layers."/net/net.9/Gemm"]\nfold = [1, 1]'],
                 ["cfg.toml", "/net/net.9/Gemm", "no Conv or Gemm layer"],
                 id="config-unknown-layer"),
    pytest.param(lambda t, m: m, ["--config", 'CONFIG:[layers."/net/net.1/Gemm"]\nfold = [2, 8]'],
                 [f"--multipliers {DEFAULT_BUDGET}", "the config's folds take 16"],
                 id="config-over-budget"),
]


@pytest.mark.parametrize("model, extra, words", HW_ERRORS)
def test_hw_bad_input_exits_2_without_build_files(tmp_path, mlp_int, model, extra, words):
    extra = [str(_write(tmp_path / "cfg.toml", a[len("CONFIG:"):])) if a.startswith("CONFIG:")
             else a for a in extra]
    out = tmp_path / "build"
    assert_user_error(intforge("hw", model(tmp_path, mlp_int), "-o", out, *extra), *words)
    assert not out.exists()


def _copy(build: Path, to: Path) -> Path:
    """The build's own files (not what `sim` added to it)."""
    shutil.copytree(build, to, ignore=shutil.ignore_patterns("sim", "repro"))
    return to


def test_hw_failure_keeps_an_existing_build(tmp_path, mlp_build):
    build = _copy(mlp_build, tmp_path / "build")
    before = {p.name: p.read_bytes() for p in build.iterdir()}
    assert_user_error(intforge("hw", model_path("mlp"), "-o", build), "not an intforge")
    assert {p.name: p.read_bytes() for p in build.iterdir()} == before


def test_hw_write_failure_leaves_no_partial_build(tmp_path, monkeypatch):
    graph = quantized("mlp")
    hw_build.write_build(tmp_path / "old", graph, make_plan(graph, multipliers=16), {})
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    real, calls = hw_build.atomic_write, []

    def failing(path, mode="wb"):  # the third file cannot be written
        calls.append(path)
        if len(calls) == 3:
            raise DataError(f"cannot write {path}: disk full")
        return real(path, mode)

    monkeypatch.setattr(hw_build, "atomic_write", failing)
    for folder in (tmp_path / "new", tmp_path / "old"):
        with pytest.raises(DataError, match="disk full"):
            hw_build.write_build(folder, graph, make_plan(graph), {"multipliers": 8})
        calls.clear()
    assert not (tmp_path / "new").exists()
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before


FOLD_CONFIG_ERRORS = [  # (TOML text, words in the DataError)
    ('[layers."/net/net.1/Gemm"]\nfold = [0, 2]\n', ["fold must be [P, S]", "[0, 2]"]),
    ('[layers."/net/net.1/Gemm"]\nfold = [2]\n', ["fold must be [P, S]"]),
    ('[layers."/net/net.1/Gemm"]\nfold = [1, 2, 3]\n', ["fold must be [P, S]"]),
    ('[layers."/net/net.1/Gemm"]\nfold = "2x8"\n', ["fold must be [P, S]", "'2x8'"]),
    ('[layers."/net/net.1/Gemm"]\nfold = [true, 2]\n', ["fold must be [P, S]"]),
    ('[layers."/net/net.1/Gemm"]\nfold = [2.5, 2]\n', ["fold must be [P, S]"]),
    ('[layers."/net/net.1/Gemm"]\nlanes = 4\n', ["unknown key 'lanes'", "/net/net.1/Gemm"]),
    ('[layers."/net/net.1/Gemm"]\nweight_bits = 4\n', ["unknown key 'weight_bits'"]),
    ('[layers."/net/net.0/Flatten"]\nfold = [1, 1]\n', ["/net/net.0/Flatten", "no Conv or Gemm"]),
    ('[layers]\n"/net/net.1/Gemm" = 3\n', ["/net/net.1/Gemm", "must be a table"]),
    ('[fold]\nx = 1\n', ["unknown key 'fold'"]),
    ('[layers."/net/net.1/Gemm"\nfold = [1, 1]\n', ["not valid TOML"]),
]


@pytest.mark.parametrize("text, words", FOLD_CONFIG_ERRORS)
def test_fold_config_errors_name_file_and_key(tmp_path, text, words):
    path = _write(tmp_path / "folds.toml", text)
    with pytest.raises(DataError) as error:
        load_folds(path, quantized("mlp"))
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message, message


# ---- sim --------------------------------------------------------------------------------
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_sim_matches_the_golden_model(mlp_build, simulator):
    result = intforge("sim", mlp_build, "--data", TEST, "--limit", SIM_IMAGES,
                      "--simulator", simulator, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    out = last_json(result.stdout)
    interval = _json(mlp_build / "report.json")["initiation_interval"]
    assert out["simulator"] == simulator and out["samples"] == SIM_IMAGES
    assert out["checked"] == (SIM_IMAGES + TIMING_SAMPLES) * 10  # 10 logits per image
    assert out["mismatches"] == 0 and out["first_mismatch"] is None and out["divergence"] is None
    assert out["initiation_interval"] == interval
    assert out["cycles_per_inference"] == interval  # full rate: the slowest engine's cycles
    assert interval < out["latency"] < 10 * interval
    # two runs of 10 and 4 images, each at least one interval per image after the first
    assert out["sim_cycles"] >= (SIM_IMAGES - 1 + TIMING_SAMPLES - 1) * interval
    assert out["sim_cycles_per_second"] > 0 and out["sim_seconds"] > 0
    assert "0 mismatches" in result.stdout


@pytest.mark.slow
def test_sim_jobs_split_gives_the_same_result(mlp_build):
    runs = [intforge("sim", mlp_build, "--data", TEST, "--limit", SIM_IMAGES, "--jobs", jobs,
                     "--json") for jobs in (1, 2)]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    one, two = (last_json(run.stdout) for run in runs)
    assert two["jobs"] == 2
    for key in ("samples", "checked", "mismatches", "cycles_per_inference",
                "initiation_interval", "latency"):
        assert one[key] == two[key], key
    parts = mlp_build / "sim" / "verilator"
    assert (parts / "part0").is_dir() and (parts / "part1").is_dir()


def _edit(name: str, change):
    def edit(build: Path) -> None:
        path = build / name
        path.write_text(change(path.read_text()))
    return edit


def _empty(build: Path) -> None:
    for path in build.iterdir():
        path.unlink()


SIM_ERRORS = [  # (change to a copy of the MLP build, extra args, words)
    pytest.param(_empty, [], ["is not a build folder", "plan.json"], id="not-a-build"),
    pytest.param(_edit("top.v", lambda v: v.replace("module top(", "module top2(")), [],
                 ["top.v is not the design"], id="edited-verilog"),
    pytest.param(_edit("plan.json", lambda v: v[:40]), [], ["plan.json", "not a valid plan"],
                 id="truncated-plan"),
    pytest.param(_edit("plan.json", lambda v: v.replace("[\n        1,", "[\n        3,", 1)), [],
                 ["plan.json", "does not match"], id="plan-fold-changed"),
    pytest.param(None, ["--gap", "1"], ["--gap", "below 1"], id="gap-1"),
    pytest.param(None, ["--jobs", "0"], ["--jobs", "positive integer"], id="jobs-0"),
    pytest.param(None, ["--simulator", "modelsim"], ["--simulator", "invalid choice"],
                 id="unknown-simulator"),
]


@pytest.mark.parametrize("change, extra, words", SIM_ERRORS)
def test_sim_bad_input_exits_2(tmp_path, mlp_build, change, extra, words):
    build = _copy(mlp_build, tmp_path / "build")
    if change:
        change(build)
    assert_user_error(intforge("sim", build, "--data", TEST, "--limit", 2, *extra), *words)
    assert not (build / "sim").exists()


def test_sim_data_of_the_wrong_shape_exits_2(tmp_path, mlp_build):
    data = tmp_path / "flat.npz"
    np.savez(data, x=np.zeros((3, 64), np.float32))
    assert_user_error(intforge("sim", mlp_build, "--data", data), "flat.npz", "expects 1x8x8")


# ---- diagnosis --------------------------------------------------------------------------
def test_locate_in_stream_order():
    # (C, H, W) = (3, 2, 4) streams HWC: element e is channel e % 3 of pixel e // 3
    assert locate(0, (3, 2, 4)) == (0, (0, 0))
    assert locate(5, (3, 2, 4)) == (2, (0, 1))  # pixel 1 = (y 0, x 1)
    assert locate(14, (3, 2, 4)) == (2, (1, 0))  # pixel 4 = (y 1, x 0)
    assert locate(7, (10,)) == (7, ())
    assert locate(5, (2, 3)) == (2, (1,))


def test_sub_graph_keeps_exactly_the_ancestors():
    graph = quantized("digits_cnn")
    plan = make_plan(graph)
    add = next(op for op in graph.ops if isinstance(op, ir.Add))
    sub, sub_plan = sub_graph(graph, plan, add.outputs[0])
    producers = {op.outputs[0]: op.name for op in graph.ops}
    ancestors, frontier = set(), list(add.inputs)
    while frontier:
        name = producers.get(frontier.pop())
        if name and name not in ancestors:
            ancestors.add(name)
            frontier += next(op for op in graph.ops if op.name == name).inputs
    assert [op.name for op in sub.ops] == [op.name for op in graph.ops
                                           if op.name in ancestors | {add.name}]
    assert sub.outputs == add.outputs and sub.input == graph.input
    assert [s.op.name for s in sub_plan.stages] == [op.name for op in sub.ops]
    golden = evaluate.run(graph, np.zeros((1, 1, 8, 8), np.int64), taps=True)[add.outputs[0]]
    assert np.array_equal(evaluate.run(sub, np.zeros((1, 1, 8, 8), np.int64))[add.outputs[0]],
                          golden)


def _with_fault(graph: ir.IntGraph, conv: ir.Conv, xq: np.ndarray) -> ir.IntGraph:
    """`graph` with one weight of `conv` set to 0: the largest one whose change shows in the
    conv's output on `xq` (a weight from an input channel that ReLU keeps at 0 would not).
    |w| only shrinks, so the accumulator bound still holds: a valid graph of the same widths."""
    before = evaluate.run(graph, xq, taps=True)[conv.outputs[0]]
    for index in np.argsort(-np.abs(conv.weight), axis=None):
        weight = conv.weight.copy()
        weight.flat[index] = 0
        faulty = dataclasses.replace(graph, ops=[dataclasses.replace(op, weight=weight)
                                                 if op is conv else op for op in graph.ops])
        if not np.array_equal(evaluate.run(faulty, xq, taps=True)[conv.outputs[0]], before):
            return faulty
    raise AssertionError(f"no single weight of {conv.name} changes its output")


def _small_cnn(path: Path) -> ir.IntGraph:
    """Two 3x3 convolutions (1 -> 3 -> 4 channels, ReLU) and a dense layer on 1x6x6 inputs,
    random weights, quantized on random inputs: a real CNN, quick to build and simulate."""
    rng = np.random.default_rng(3)
    weights = [numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)
               for name, shape in (("w1", (3, 1, 3, 3)), ("b1", (3,)), ("w2", (4, 3, 3, 3)),
                                   ("b2", (4,)), ("w3", (5, 144)), ("b3", (5,)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="dense", transB=1)]
    graph = helper.make_graph(
        nodes, "small_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    calib = Dataset(rng.random((32, 1, 6, 6), dtype=np.float32), None, "random calibration")
    return quantize_model(path, calib, QuantOptions(), progress=False)


def test_mismatch_is_diagnosed_and_reproduced(tmp_path, monkeypatch, capsys):
    """`intforge sim` on a build whose hardware has a fault the golden model lacks: the
    simulated Accelerators (the run's, each cut's, the waveform's) are built from the graph
    with one changed weight in the second convolution, everything else from the build."""
    golden = _small_cnn(tmp_path / "small_cnn.onnx")
    conv = [op for op in golden.ops if isinstance(op, ir.Conv)][1]  # the first one is fine
    plan = make_plan(golden, multipliers=16)
    hw_build.write_build(tmp_path / "build", golden, plan, {"multipliers": 16})
    x = np.random.default_rng(4).random((2, 1, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x)
    xq = evaluate.quantize_input(golden, x)
    faulty = _with_fault(golden, conv, xq)
    swap = {op.name: op for op in faulty.ops}

    def with_the_fault(graph: ir.IntGraph, plan) -> Accelerator:
        ops = [swap[op.name] if op.name == conv.name else op for op in graph.ops]
        return Accelerator(dataclasses.replace(graph, ops=ops), plan)

    monkeypatch.setattr(sim_jobs, "Accelerator", with_the_fault)
    monkeypatch.setattr(sim_diagnose, "Accelerator", with_the_fault)
    code = main(["sim", str(tmp_path / "build"), "--data", str(tmp_path / "data.npz"),
                 "--simulator", "icarus", "--seed", "7", "--json"])
    out = capsys.readouterr().out
    assert code == 1, out

    # where the fault must first show: the golden model of both graphs, in stream order
    good, bad = (to_stream_order(evaluate.run(g, xq, taps=True)[conv.outputs[0]])
                 for g in (golden, faulty))
    sample, element = (int(i) for i in np.argwhere(good != bad)[0])
    c, h, w = golden.tensors[conv.outputs[0]].shape
    pixel = element // c
    result = last_json(out)
    assert result["mismatches"] > 0 and result["first_mismatch"] is not None
    assert result["divergence"] == {
        "layer": conv.name, "op": "Conv", "tensor": conv.outputs[0], "sample": sample,
        "channel": element % c, "position": [pixel // w, pixel % w],
        "expected": int(good[sample, element]), "actual": int(bad[sample, element])}
    assert f"first divergence: layer '{conv.name}' (Conv)" in out

    repro = tmp_path / "build" / "repro"
    failing = result["first_mismatch"]["sample"]
    replayed = list(range(max(0, failing - 3), failing + 1))
    with np.load(repro / "sample.npz") as saved:
        assert saved["samples"].tolist() == replayed
        assert np.array_equal(saved["xq"], xq[replayed])
        assert np.array_equal(evaluate.quantize_input(golden, saved["x"]), xq[replayed])
        final = {g: to_stream_order(evaluate.run(g, xq[replayed])[g.outputs[0]])
                 for g in (golden, faulty)}
        assert np.array_equal(saved["expected"], final[golden])
        assert np.array_equal(saved["actual"], final[faulty])  # the hardware is its graph, exactly
    diagnosis = _json(repro / "diagnosis.json")
    assert diagnosis["divergence"]["layer"] == conv.name
    assert diagnosis["first_mismatch"] == result["first_mismatch"]
    assert (diagnosis["simulator"], diagnosis["gap"], diagnosis["stall"], diagnosis["seed"]) == (
        "icarus", 0.2, 0.2, 7)
    assert (repro / "waves.fst").stat().st_size > 1000 and diagnosis["waves_mismatches"] > 0


@pytest.mark.slow
def test_demo_runs_the_hardware_flow(tmp_path):
    result = intforge("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert BUILD_FILES <= {p.name for p in (tmp_path / "demo" / "build").iterdir()}
    report = _json(tmp_path / "demo" / "build" / "report.json")
    assert report["budget"] == {"multipliers": DEFAULT_BUDGET}
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in result.stdout.splitlines() if line.count("│") == 3}
    assert rows["cycles per inference"].startswith(f"{report['initiation_interval']:,} measured")
    assert rows["RTL vs golden model"].startswith("0 mismatches")
