# amaranth: UnusedElaboratable=no
"""Residual networks under adversarial backpressure: the output held not-ready for random
stretches of hundreds of cycles, then of several samples, and the input idle in bursts, and
they still finish, bit-exact.

The harness's bursts (`sim.player`, `gap_stretch` / `stall_stretch`) are checked first on
Amaranth's simulator against their renewal-process statistics. Then small residual graphs
(one with a 1x1 projection shortcut beside three 3x3 convolutions, which deadlocked before
every branch of a fork with two convolutions got a deep FIFO) run on Icarus, and the zoo's
residual nets (resnet_gap, digits_cnn) on Verilator in the slow tier.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib import stream
from amaranth.sim import Simulator

from hw.lower import Accelerator
from hw.plan import make_plan
from quant import ir
from sim.bench import Transcript
from sim.network import build_for, simulate
from sim.player import Collector, StreamPlayer, threshold
from test_network_plan import images, projection_graph, residual_graph
from test_network_sim import BUDGET, built, check, design, split_images


def adversarial(interval: int) -> list[dict]:
    """Two settings of output stalls and input gaps (probability a free cycle starts a burst,
    longest burst): bursts of hundreds of cycles (the output not ready ~67% of the time in
    stretches of up to 400 cycles, the input idle ~85% in stretches of up to 100); and
    bursts of several samples (the output not ready ~80% of the time in stretches of up to 8
    intervals, free for about one interval in between; the input idle ~50% in stretches of
    up to half an interval), longer than the pipeline's buffers hold, so it backs up through
    every fork to the input."""
    gaps = max(interval // 2, 1)
    return [{"stall": 0.01, "stall_stretch": 400, "gap": 0.1, "gap_stretch": 100},
            {"stall": 1 / interval, "stall_stretch": 8 * interval, "gap": 2 / (gaps + 1),
             "gap_stretch": gaps}]


def run_adversarial(accelerator: Accelerator, graph: ir.IntGraph, xq: np.ndarray,
                    simulator: str, work_dir: Path, build: Path, what: str) -> None:
    """Every `adversarial` setting: all outputs arrive and equal the golden model's. With
    stalls of several samples, the input was refused for 0.7 of an interval or more at a time
    (at full rate, and with per-cycle gaps and stalls, these nets never make it wait that
    long), so the stalls did reach back through the forks and their skip FIFOs. (How long is
    a draw of the stall process against the pipeline's buffers: the tiny residual net waited
    1.9 intervals before the FPGA pipeline registers, 0.91 after, 1.3 to 3.3 with other seeds.)"""
    for number, settings in enumerate(adversarial(accelerator.interval)):
        run = simulate(accelerator, graph, xq, simulator, work_dir / str(number), seed=number,
                       build_dir=build, **settings)
        check(run, f"{what} with {settings}")
    longest = Transcript.load(work_dir / str(number) / "transcript.json")  # the long stalls
    refused = max(np.diff(longest.in_cycles))
    assert refused >= 0.7 * accelerator.interval, (refused, accelerator.interval)


def low_runs(trace: list[int]) -> list[int]:
    """Lengths of the runs of 0 in a 0/1 trace."""
    runs, length = [], 0
    for value in trace + [1]:
        if value:
            if length:
                runs.append(length)
            length = 0
        else:
            length += 1
    return runs


def expected_busy(probability: float, stretch: int) -> tuple[float, float]:
    """A renewal process: each free cycle starts a burst with probability p; a burst lasts
    1..S cycles, uniform, B = (S+1)/2 on average, and bursts that follow each other merge into
    one low run (probability p each time). Fraction of cycles in bursts: p*B / (p*B + 1 - p);
    mean low run: B / (1 - p)."""
    burst = (stretch + 1) / 2
    return probability * burst / (probability * burst + 1 - probability), burst / (1 - probability)


def trace(dut, signal, settings: dict, cycles: int, ready=None) -> list[int]:
    """`signal` at every clock edge of `cycles` cycles, after setting `settings` (port members)."""
    samples = []

    async def bench(ctx) -> None:
        for member, value in settings.items():
            ctx.set(getattr(dut.port, member), value)
        if ready is not None:
            ctx.set(ready, 1)
        for _ in range(cycles):
            samples.append((await ctx.tick().sample(signal))[2])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return samples


@pytest.mark.parametrize("probability, stretch", [(0.3, 1), (0.02, 64)])
def test_collector_stalls_come_in_bursts(probability: float, stretch: int) -> None:
    collector = Collector(stream.Signature(unsigned(8)), 16, word_bits=64)
    ready = trace(collector, collector.i_stream.ready,
                  {"expect": 2 ** 32 - 1, "max_cycles": 2 ** 32 - 1,
                   "stall": threshold(probability), "stretch": stretch}, 40_000)
    fraction, mean_run = expected_busy(probability, stretch)
    runs = low_runs(ready)
    measured = ready.count(0) / len(ready)
    assert abs(measured - fraction) < 0.05, (measured, fraction)
    assert abs(np.mean(runs) / mean_run - 1) < 0.15, (np.mean(runs), mean_run)
    assert max(runs) >= 0.75 * stretch


@pytest.mark.parametrize("probability, stretch", [(0.3, 1), (0.05, 32)])
def test_player_idles_in_bursts(probability: float, stretch: int) -> None:
    """With ready always high the player's valid is low exactly in its idle bursts."""
    player = StreamPlayer(stream.Signature(unsigned(8)), 1 << 15, word_bits=1024)
    valid = trace(player, player.o_stream.valid,
                  {"count": 1 << 15, "gap": threshold(probability), "stretch": stretch}, 30_000,
                  ready=player.o_stream.ready)
    fraction, mean_run = expected_busy(probability, stretch)
    runs = low_runs(valid)
    measured = valid.count(0) / len(valid)
    assert abs(measured - fraction) < 0.05, (measured, fraction)
    assert abs(np.mean(runs) / mean_run - 1) < 0.15, (np.mean(runs), mean_run)


@pytest.mark.parametrize("gap, stretch, cycles", [(0.5, 1, 300), (0.2, 16, 2000)],
                         ids=["per-cycle", "bursts"])
def test_player_holds_each_beat_until_taken(gap: float, stretch: int, cycles: int) -> None:
    """Under random ready and idle cycles (single or in bursts), a beat once shown stays
    (valid and payload) until it is taken, and the beats taken are the stored ones in order."""
    beats = list(range(1, 81))
    player = StreamPlayer(stream.Signature(unsigned(8)), 128, word_bits=32, init=beats)
    o, rng, taken = player.o_stream, random.Random(1), []

    async def bench(ctx) -> None:
        ctx.set(player.port.count, len(beats))
        ctx.set(player.port.gap, threshold(gap))
        ctx.set(player.port.stretch, stretch)
        shown = None
        for _ in range(cycles):
            ctx.set(o.ready, rng.random() < 0.5)
            _, _, valid, ready, payload = await ctx.tick().sample(o.valid, o.ready, o.payload)
            assert shown is None or (valid, payload) == (1, shown), "beat withdrawn before taken"
            shown = payload if valid and not ready else None
            if valid and ready:
                taken.append(payload)

    sim = Simulator(player)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert taken == beats


# graph, multipliers, images
SMALL = {"residual": (residual_graph, 12, 20), "projection": (projection_graph, 16, 8)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_residual_nets_survive_adversarial_backpressure(name: str, tmp_path: Path) -> None:
    """On Icarus, one build for both adversarial settings."""
    make, budget, count = SMALL[name]
    graph = make()
    accelerator = Accelerator(graph, make_plan(graph, multipliers=budget))
    run_adversarial(accelerator, graph, images(graph, count), "icarus", tmp_path,
                    build_for(accelerator, count, "icarus"), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet_gap", "digits_cnn"])
def test_residual_net_survives_adversarial_backpressure(name: str, tmp_path: Path) -> None:
    """On Verilator, on the build of `test_network_sim` (W8A8, 32 multipliers), 20 images."""
    graph, accelerator = design(name, 8, BUDGET)
    run_adversarial(accelerator, graph, split_images(name, graph, 20), "verilator", tmp_path,
                    built(name, 8, BUDGET, "verilator"), name)
