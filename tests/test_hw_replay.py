"""The replay buffer: each vector comes out `repeats` times, in order, at one beat per cycle."""
import random

import pytest
from amaranth.hdl import unsigned

from hw.replay import Replay
from sim.amaranth_harness import run_stream
from sim.bench import StreamCase, check_outputs


@pytest.mark.parametrize("beats, repeats", [(1, 1), (1, 4), (3, 1), (4, 3)])
@pytest.mark.parametrize("gap, stall", [(0.0, 0.0), (0.4, 0.4)])
def test_replay_repeats_each_vector(beats, repeats, gap, stall):
    rng = random.Random(beats * 10 + repeats)
    vectors = [[rng.getrandbits(12) for _ in range(beats)] for _ in range(6)]
    block = Replay(unsigned(12), beats=beats, repeats=repeats)
    case = StreamCase(inputs=[v for vector in vectors for v in vector], in_width=12,
                      outputs=len(vectors) * beats * repeats, gap=gap, stall=stall, seed=3)
    transcript = run_stream(block, case)
    expected = [[v for vector in vectors for _ in range(repeats) for v in vector]]
    check_outputs("Replay", expected, [transcript.outputs])
    if gap == stall == 0:  # the first vector loads, then every cycle emits a beat
        assert transcript.out_cycles == list(range(beats + Replay.LATENCY,
                                                   beats + Replay.LATENCY + len(expected[0])))
