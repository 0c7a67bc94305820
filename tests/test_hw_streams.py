# amaranth: UnusedElaboratable=no
"""Stream plumbing on Amaranth's simulator: Regroup re-cuts vectors, Fork feeds two consumers,
StreamFifo and RegisterSlice keep order, and a residual block (Fork, long path, skip FIFO, Add)
finishes at full rate, finishes slowly, or stops forever exactly where its depth formulas say."""
import math

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hw.streams import (Fork, Regroup, RegisterSlice, StreamFifo, from_stream_order,
                        skip_depths, to_stream_order)
from quant.qtypes import IntType
from sim.amaranth_harness import run_ports, run_stream
from sim.bench import StreamCase, check_outputs
from sim.tb_elementwise import (cycles_of, output_values, random_add, random_lut, samples_of,
                                stream_beats)
from sim.tb_streams import Residual, long_latency

SAMPLES = 6
TIMINGS = {"full-rate": (0.0, 0.0), "gaps": (0.4, 0.4)}


def test_stream_order_is_hwc_and_invertible():
    x = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)  # [N, C, H, W]
    flat = to_stream_order(x)
    assert flat[0].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]  # pixel by pixel
    assert np.array_equal(from_stream_order(flat, (3, 2, 2)), x)
    assert np.array_equal(to_stream_order(x.reshape(2, 12)), x.reshape(2, 12))


# length, lanes in, lanes out
REGROUPS = [(10, 4, 3), (10, 1, 4), (10, 4, 1), (7, 3, 2), (12, 3, 4), (8, 4, 4), (5, 2, 3)]


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("length, lanes_in, lanes_out", REGROUPS)
def test_regroup_recuts_vectors(length, lanes_in, lanes_out, timing):
    """Every vector comes out whole and in order; at full rate a vector takes
    max(ceil(K/L_in), ceil(K/L_out)) cycles, plus LATENCY once."""
    rng = np.random.default_rng(length * 10 + lanes_in)
    x = samples_of(IntType(5, True), SAMPLES, (length,), rng)
    block = Regroup(signed(5), length=length, lanes_in=lanes_in, lanes_out=lanes_out)
    gap, stall = TIMINGS[timing]
    beats = stream_beats(block, "i_stream", x)
    case = StreamCase(inputs=beats, in_width=block.i_stream.p.shape().size,
                      outputs=SAMPLES * block.beats_out, gap=gap, stall=stall, seed=length)
    transcript = run_stream(block, case)
    check_outputs("Regroup", x, output_values(block, "Regroup", transcript, SAMPLES, length))
    if timing == "full-rate":
        per_vector = max(math.ceil(length / lanes_in), math.ceil(length / lanes_out))
        assert cycles_of(transcript) == SAMPLES * per_vector + Regroup.LATENCY


@pytest.mark.parametrize("timing", TIMINGS)
def test_fork_gives_every_beat_to_both_branches(timing):
    """Independent backpressure on the branches; at full rate each branch takes beat k in the
    cycle the input gives it (no latency)."""
    values = [int(v) for v in np.random.default_rng(0).integers(0, 256, size=50)]
    gap, stall = TIMINGS[timing]
    inputs = {"i_stream": StreamCase(inputs=values, in_width=8, outputs=0, gap=gap, seed=1)}
    outputs = {f"o{k}_stream": StreamCase(inputs=[], in_width=0, outputs=len(values),
                                          stall=stall, seed=10 + 7 * k) for k in range(2)}
    ports = run_ports(Fork(unsigned(8)), inputs, outputs)
    for name in outputs:
        check_outputs(f"Fork {name}", [values], [ports[name].outputs])
        if timing == "full-rate":
            assert ports[name].out_cycles == ports["i_stream"].in_cycles
    if timing == "gaps":  # the branches really were out of step
        assert ports["o0_stream"].out_cycles != ports["o1_stream"].out_cycles


def test_fork_refuses_one_branch():
    with pytest.raises(ValueError, match=r"^Fork outputs must be >= 2, not 1$"):
        Fork(unsigned(8), outputs=1)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("depth", [1, 2, 3, 5, 16])
def test_stream_fifo_keeps_order(depth, timing):
    """Order kept under gaps and backpressure; full rate (n beats in n + LATENCY cycles) from
    depth 3 on, while depths 1 and 2 cannot read and write in one cycle."""
    values = [int(v) for v in np.random.default_rng(depth).integers(0, 1 << 12, size=40)]
    gap, stall = TIMINGS[timing]
    transcript = run_stream(StreamFifo(unsigned(12), depth),
                            StreamCase(inputs=values, in_width=12, outputs=len(values),
                                       gap=gap, stall=stall, seed=depth))
    check_outputs("StreamFifo", [values], [transcript.outputs])
    if timing == "full-rate":
        full_rate = cycles_of(transcript) == len(values) + StreamFifo.LATENCY
        assert full_rate == (depth >= 3)


@pytest.mark.parametrize("timing", TIMINGS)
def test_register_slice_keeps_order_at_full_rate(timing):
    """Order kept under gaps and backpressure (the skid register holds the beat that arrives
    while the output is held); at full rate n beats take n + LATENCY cycles."""
    values = [int(v) for v in np.random.default_rng(7).integers(0, 1 << 12, size=60)]
    gap, stall = TIMINGS[timing]
    transcript = run_stream(RegisterSlice(unsigned(12)),
                            StreamCase(inputs=values, in_width=12, outputs=len(values),
                                       gap=gap, stall=stall, seed=7))
    check_outputs("RegisterSlice", [values], [transcript.outputs])
    if timing == "full-rate":
        assert cycles_of(transcript) == len(values) + RegisterSlice.LATENCY


# --- the residual pattern: x -> Fork -> [Replay(B) -> Lut] -> Add <- StreamFifo(depth) <- Fork

def residual(beats: int, lanes: int, depth: int, seed: int):
    rng = np.random.default_rng(seed)
    itype = IntType(8, True)
    block = Residual(random_lut(rng, itype, itype), random_add(rng, (itype, itype), itype),
                     itype=itype, beats=beats, lanes=lanes, depth=depth)
    return block, samples_of(itype, SAMPLES, (beats * lanes,), rng)


def run_residual(block: Residual, x: np.ndarray, *, gap: float = 0.0, stall: float = 0.0):
    beats = stream_beats(block, "i_stream", x)
    case = StreamCase(inputs=beats, in_width=block.i_stream.p.shape().size,
                      outputs=len(x) * block.beats, gap=gap, stall=stall, seed=4,
                      max_cycles=30 * len(beats))
    return run_stream(block, case)


@pytest.mark.parametrize("beats, lanes", [(4, 2), (6, 1)])
def test_residual_depth_bounds(beats, lanes):
    """depth >= Λ + 1: full rate, exactly S*B + Λ + Add latency cycles; A - 1 <= depth <= Λ:
    bit-exact but slower; depth < A - 1: the fork takes `depth` beats and nothing ever
    comes out (deadlock, caught by the cycle limit)."""
    finish, full = skip_depths(beats, long_latency(beats))
    assert (finish, full) == (beats - 1, beats + 3)
    for depth in range(1, full + 2):
        block, x = residual(beats, lanes, depth, seed=beats)
        transcript = run_residual(block, x)
        if depth < finish:
            assert (len(transcript.outputs), len(transcript.in_cycles)) == (0, depth), (
                f"depth {depth} < {finish} must deadlock after the fork took {depth} beats")
            continue
        expected = block.golden(x)
        check_outputs(f"Residual depth {depth}", expected,
                      output_values(block, "Residual", transcript, len(x), x.shape[1]))
        formula = SAMPLES * beats + block.latency
        assert (cycles_of(transcript) == formula) == (depth >= full), (
            f"depth {depth}: {cycles_of(transcript)} cycles, full rate is {formula} from "
            f"depth {full}")


def test_residual_at_the_finishing_depth_survives_gaps_and_backpressure():
    assert skip_depths(5, long_latency(5))[0] == 4
    block, x = residual(5, 2, 4, seed=9)
    transcript = run_residual(block, x, gap=0.4, stall=0.4)
    check_outputs("Residual", block.golden(x),
                  output_values(block, "Residual", transcript, len(x), x.shape[1]))
