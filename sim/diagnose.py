"""Where a failing hardware run first goes wrong, and a reproducer to debug it with.

The accelerator has one output stream, so intermediate tensors are reached by cutting the
graph: for each op in order, the sub-graph that computes its output (the op and its
ancestors, nothing else) is built as its own `Accelerator` with the same engines (the
full plan's stages: same folds, lanes and ROMs), simulated on the failing samples, and its
output stream compared element by element with the golden model of the same sub-graph
(`sim.network.simulate`). The first op whose stream differs is the first diverging layer:
its inputs matched (they were checked before it), its output did not. A Reshape has no
engine (its stream is its input's) and is not probed.

The reproducer (`write_repro`) holds the samples as a data file `intforge sim` replays, the
expected and actual outputs, the diagnosis, and a waveform of the whole accelerator on
those samples. The waveform is always recorded with Icarus (FST): Verilator's FST writer
needs lz4 headers a plain install lacks, and its VCD of a whole network is tens of MB and
its traced build several times slower than Icarus's.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hw.lower import Accelerator
from hw.plan import Plan
from quant import ir
from quant.atomic import atomic_write
from sim.jobs import Part, PartResult
from sim.network import Mismatch, simulate

REPLAY_BEFORE = 3  # samples that preceded the failing one in its run, replayed with it
WAVES_SIMULATOR = "icarus"
MISSING = np.iinfo(np.int64).min  # what `sim.network` puts where no output beat came


@dataclass(frozen=True)
class Divergence:
    """The first element of the first diverging layer's output."""

    layer: str
    op: str
    tensor: str
    sample: int  # among the samples given to `first_divergence` (`investigate`: all)
    channel: int
    position: tuple[int, ...]  # (y, x) for a (C, H, W) tensor, () for a vector
    expected: int
    actual: int | None  # None: the hardware stopped before this element

    def __str__(self) -> str:
        where = f"channel {self.channel}" + (
            f" at (y, x) = ({self.position[0]}, {self.position[1]})" if len(self.position) == 2
            else f" at {self.position}" if self.position else "")
        got = "nothing (the output stream ended early)" if self.actual is None else self.actual
        return (f"first divergence: layer '{self.layer}' ({self.op}), output '{self.tensor}', "
                f"sample {self.sample}, {where}: expected {self.expected}, got {got}")

    def to_json(self) -> dict:
        return {**asdict(self), "position": list(self.position)}


def locate(element: int, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(channel, position) of element `element` of a tensor in stream order: HWC for
    (C, H, W), natural order (channel last) otherwise."""
    if len(shape) == 3:
        c, _, w = shape
        return element % c, (element // (c * w), element // c % w)
    if not shape:
        return 0, ()
    index = np.unravel_index(element, shape)
    return int(index[-1]), tuple(int(i) for i in index[:-1])


def sub_graph(graph: ir.IntGraph, plan: Plan, tensor: str) -> tuple[ir.IntGraph, Plan]:
    """The ops that compute `tensor` (in graph order) as a graph whose output is `tensor`,
    with the full plan's stages for them."""
    producers = {op.outputs[0]: op for op in graph.ops}
    needed, stack = set(), [tensor]
    while stack:
        op = producers.get(stack.pop())
        if op is not None and op.name not in needed:
            needed.add(op.name)
            stack.extend(op.inputs)
    ops = [op for op in graph.ops if op.name in needed]
    names = {graph.input, *(t for op in ops for t in (*op.inputs, *op.outputs))}
    sub = ir.IntGraph(ops, {n: s for n, s in graph.tensors.items() if n in names}, graph.input,
                      [tensor], name=f"{graph.name}:{tensor}", meta=graph.meta)
    stages = {stage.op.name: stage for stage in plan.stages}
    elements = math.prod(graph.tensors[tensor].shape)
    # The cut output streams one element per beat, which may be slower than the full plan.
    return sub, Plan([stages[op.name] for op in ops], max(plan.interval, elements),
                     plan.input_elements, elements)


def first_divergence(hardware: ir.IntGraph, golden: ir.IntGraph, plan: Plan, xq: np.ndarray,
                     simulator: str, work_dir: Path, *, gap: float = 0.0, stall: float = 0.0,
                     seed: int = 0) -> Divergence | None:
    """Simulate `hardware`'s accelerator (built as `plan` says) cut after each op in turn on
    samples `xq`, each cut compared with `golden` cut at the same tensor; the first
    difference, or None when every probed tensor matches. (`hardware` and `golden` are the
    same graph, except in a test that injects a fault into one.)"""
    for k, op in enumerate(hardware.ops):
        if isinstance(op, ir.Reshape):
            continue
        tensor = op.outputs[0]
        cut, cut_plan = sub_graph(hardware, plan, tensor)
        run = simulate(Accelerator(cut, cut_plan), sub_graph(golden, plan, tensor)[0], xq,
                       simulator, work_dir / f"{k:02d}", gap=gap, stall=stall, seed=seed)
        bad = run.first_mismatch
        if bad is not None:
            channel, position = locate(bad.element, golden.tensors[tensor].shape)
            return Divergence(op.name, type(op).__name__, tensor, bad.sample, channel, position,
                              bad.expected, None if bad.actual == MISSING else bad.actual)
    return None


@dataclass(frozen=True)
class Repro:
    folder: Path
    samples: list[int]  # indices of the replayed samples in the simulated set
    divergence: Divergence | None
    waves: Path
    waves_mismatches: int  # mismatches of the (Icarus) waveform run


def investigate(hardware: ir.IntGraph, golden: ir.IntGraph, plan: Plan, failed: PartResult,
                mismatch: Mismatch, simulator: str, folder: Path) -> Repro:
    """Replay the failing sample, with up to REPLAY_BEFORE samples that preceded it in its
    run, under that run's gaps, stalls and seed: find the first diverging layer on
    `simulator`, record a waveform, and write the reproducer into `folder`."""
    part, run = failed.part, failed.run
    first = max(0, mismatch.sample - REPLAY_BEFORE)
    chosen = slice(first, mismatch.sample + 1)
    xq = part.xq[chosen]
    settings = {"gap": part.gap, "stall": part.stall, "seed": part.seed}
    folder.mkdir(parents=True, exist_ok=True)
    divergence = first_divergence(hardware, golden, plan, xq, simulator, folder / "work",
                                  **settings)
    if divergence is not None:  # its sample index, in the whole set
        divergence = dataclasses.replace(divergence, sample=part.offset + first + divergence.sample)
    waves = folder / "waves.fst"
    replay = simulate(Accelerator(hardware, plan), golden, xq, WAVES_SIMULATOR,
                      folder / "work" / "waves", waves=waves, **settings)
    repro = Repro(folder, list(range(part.offset + first, part.offset + mismatch.sample + 1)),
                  divergence, waves, replay.mismatches)
    write_repro(repro, golden, xq, run.expected[chosen], run.outputs[chosen],
                {"simulator": simulator, "run": part.name, **settings,
                 "first_mismatch": mismatch_json(part, mismatch)})
    return repro


def mismatch_json(part: Part, mismatch: Mismatch) -> dict:
    """A mismatch of `part`'s run, its sample numbered in the whole set (`actual` None: the
    hardware gave no value there)."""
    return {"sample": part.offset + mismatch.sample, "element": mismatch.element,
            "expected": mismatch.expected,
            "actual": None if mismatch.actual == MISSING else mismatch.actual}


def write_repro(repro: Repro, graph: ir.IntGraph, xq: np.ndarray, expected: np.ndarray,
                actual: np.ndarray, run: dict) -> None:
    """sample.npz (`x`: the samples as floats that quantize back to `xq`, so
    `intforge sim BUILD --data sample.npz` replays them; `xq`; `expected` and `actual`
    outputs in stream order; `samples`) and diagnosis.json."""
    x = graph.input_spec.qparams.dequantize(xq).astype(np.float32)
    with atomic_write(repro.folder / "sample.npz") as f:
        np.savez(f, x=x, xq=xq, expected=expected, actual=actual, samples=np.array(repro.samples))
    divergence = None if repro.divergence is None else {**repro.divergence.to_json(),
                                                         "message": str(repro.divergence)}
    doc = {**run, "samples": repro.samples, "divergence": divergence,
           "waves": repro.waves.name, "waves_simulator": WAVES_SIMULATOR,
           "waves_mismatches": repro.waves_mismatches}
    with atomic_write(repro.folder / "diagnosis.json", "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
