# amaranth: UnusedElaboratable=no
"""`sim.bundle`: several accelerators in turns behind one pair of streams must give, for each
one, exactly what it gives alone (outputs, and at full rate its cycles per sample), whatever
its element widths, and a wrong expectation must be caught and pinned on its accelerator.

Three tiny float models (a 1x1 Conv + Relu, a Gemm head, a MaxPool) quantized at different
widths run on Icarus, alone (`sim.network.simulate`) and bundled (`sim.bundle.simulate_bundle`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from amaranth.hdl import signed, unsigned
from onnx import TensorProto, helper, numpy_helper

from hw.lower import Accelerator
from hw.plan import make_plan
from quant.data import Dataset
from quant.evaluate import quantize_input
from quant.ir import IntGraph
from quant.options import QuantOptions
from quant.pipeline import quantize_model
from sim.bundle import Bundle, simulate_bundle
from sim.network import build_for, simulate

SAMPLES = 3
SIMULATOR = "icarus"
RNG_SEED = 5


def _model(shape: tuple[int, int, int], nodes: list[onnx.NodeProto], out: str,
           out_shape: list[int], weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", *out_shape])
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _tiny(kind: str) -> tuple[onnx.ModelProto, tuple[int, int, int]]:
    """One of three tiny float models and its input shape (C, H, W)."""
    rng = np.random.default_rng(RNG_SEED)
    if kind == "conv":
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[1, 1]),
                 helper.make_node("Relu", ["c"], ["y"])]
        return _model((2, 2, 3), nodes, "y", [3, 2, 3], {"w": rng.normal(0, 0.7, (3, 2, 1, 1)),
                                                          "b": rng.normal(0, 0.3, 3)}), (2, 2, 3)
    if kind == "gemm":
        nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
                 helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
        return _model((4, 1, 1), nodes, "y", [2], {"w": rng.normal(0, 0.5, (2, 4)),
                                                   "b": rng.normal(0, 0.3, 2)}), (4, 1, 1)
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    return _model((1, 4, 4), nodes, "y", [1, 2, 2], {}), (1, 4, 4)


# (model, weight bits, activation bits, output bits): three element widths in, three out
DESIGNS = (("conv", 3, 3, 5), ("gemm", 8, 8, 16), ("maxpool", 4, 2, 2))


@lru_cache(maxsize=None)
def design(kind: str, weight_bits: int, act_bits: int, output_bits: int,
           tmp: Path) -> tuple[IntGraph, Accelerator, np.ndarray]:
    """The quantized graph, its accelerator at 4 multipliers and SAMPLES quantized inputs."""
    model, shape = _tiny(kind)
    path = tmp / f"{kind}-{weight_bits}.onnx"
    onnx.save(model, path)
    rng = np.random.default_rng(RNG_SEED)
    calib = rng.normal(0, 1, (32, *shape)).astype(np.float32)
    options = QuantOptions(weight_bits=weight_bits, act_bits=act_bits, output_bits=output_bits)
    graph = quantize_model(path, Dataset(calib, None, "tiny"), options, progress=False)
    xq = quantize_input(graph, rng.normal(0, 1.5, (SAMPLES, *shape)).astype(np.float32))
    return graph, Accelerator(graph, make_plan(graph, multipliers=4)), xq


@pytest.fixture(scope="module")
def designs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[IntGraph, Accelerator, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("tiny")
    return [design(*spec, tmp) for spec in DESIGNS]


def test_element_is_signed_and_wide_enough_for_every_accelerator(designs) -> None:
    """Inputs signed(3), signed(8), signed(2); outputs unsigned(5), signed(16), signed(2)."""
    accelerators = [acc for _, acc, _ in designs]
    assert [acc.out_shape for acc in accelerators] == [unsigned(5), signed(16), signed(2)]
    bundle = Bundle(accelerators, SAMPLES)
    assert (bundle.in_shape, bundle.out_shape) == (signed(8), signed(16))
    assert bundle.inputs == sum(acc.inputs for _, acc, _ in designs)
    assert bundle.outputs == sum(acc.outputs for _, acc, _ in designs)


@pytest.mark.parametrize("stress", [{}, dict(gap=0.4, stall=0.4, gap_stretch=3)], ids=["full", "stress"])
def test_bundle_gives_what_each_gives_alone(designs, stress: dict, tmp_path: Path) -> None:
    graphs, accelerators, xqs = zip(*designs)
    bundle = Bundle(accelerators, SAMPLES)
    runs = simulate_bundle(bundle, graphs, xqs, SIMULATOR, tmp_path / "bundle", seed=3,
                           build_dir=build_for(bundle, SAMPLES, SIMULATOR, quick=True), **stress)
    for k, (graph, acc, xq) in enumerate(designs):
        alone = simulate(acc, graph, xq, SIMULATOR, tmp_path / f"alone{k}", seed=3, **stress)
        assert (alone.mismatches, runs[k].mismatches, runs[k].inputs_left) == (0, 0, 0), (
            f"{DESIGNS[k]}: alone {alone.first_mismatch}, bundled {runs[k].first_mismatch}, "
            f"{runs[k].inputs_left} inputs left")
        np.testing.assert_array_equal(runs[k].outputs, alone.outputs)
        if not stress:
            assert runs[k].cycles_per_sample == alone.cycles_per_sample == acc.interval
            assert runs[k].latency == alone.latency


def test_a_wrong_expectation_is_caught_on_its_accelerator(designs, tmp_path: Path) -> None:
    """The conv accelerator checked against the golden model of another quantization of
    the same model (2-bit weights): its outputs differ, the others' do not."""
    graphs, accelerators, xqs = zip(*designs)
    wrong, _, _ = design("conv", 2, 3, 5, tmp_path)
    bundle = Bundle(accelerators, SAMPLES)
    runs = simulate_bundle(bundle, (wrong, *graphs[1:]), xqs, SIMULATOR, tmp_path / "bundle",
                           build_dir=build_for(bundle, SAMPLES, SIMULATOR, quick=True))
    assert runs[0].mismatches > 0 and runs[0].first_mismatch is not None
    assert [run.mismatches for run in runs[1:]] == [0, 0]


def test_bundle_refuses_nothing_and_wrong_inputs(designs, tmp_path: Path) -> None:
    graphs, accelerators, xqs = zip(*designs)
    with pytest.raises(ValueError, match=r"^Bundle needs at least one accelerator, not \[\]$"):
        Bundle([], SAMPLES)
    with pytest.raises(ValueError, match=r"^Bundle samples must be a positive integer, not 0$"):
        Bundle(accelerators, 0)
    short = (*xqs[:2], xqs[2][:2])
    with pytest.raises(ValueError, match=r"^simulate_bundle inputs must have 3 samples each, "
                                         r"not \[3, 3, 2\]$"):
        simulate_bundle(Bundle(accelerators, SAMPLES), graphs, short, SIMULATOR, tmp_path)
