"""A stream testbench's driver, monitor and checker, independent of the simulator.

Both harnesses (`sim.amaranth_harness` on Amaranth's simulator, `sim.cocotb_bench` on Icarus
and Verilator) run the same loop once per clock cycle: ask the driver for the input's
valid/payload and the monitor for the output's ready, let the clock edge happen, then tell
both what was sampled at that edge. The result is a `Transcript` of raw payload bits and
transfer cycles; checking it is plain Python (`check_outputs`) outside any simulator.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class StreamCase:
    """Stimulus of one run: input payloads (raw bits), how many output beats to wait for,
    and the random valid gaps (`gap`: chance to idle before each beat) and ready
    backpressure (`stall`: chance that ready is low in a cycle)."""

    inputs: list[int]
    in_width: int
    outputs: int
    gap: float = 0.0
    stall: float = 0.0
    seed: int = 0
    drain: int = 16  # cycles watched after the last expected beat, to catch extra ones
    max_cycles: int = 100_000

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> StreamCase:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class Transcript:
    """What the output showed: payload bits of every beat, and the cycle of every transfer."""

    outputs: list[int] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    cycles: int = 0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Transcript:
        return cls(**json.loads(Path(path).read_text()))


class Driver:
    """Presents the case's input beats in order. Before each new beat it idles with probability
    `gap` per cycle, showing a random payload with valid low; once valid is high, valid and
    payload stay until the beat is taken (the stream contract)."""

    def __init__(self, case: StreamCase):
        self.beats = case.inputs
        self.width = case.in_width
        self.gap = case.gap
        self.rng = random.Random(case.seed)
        self.next = 0
        self.showing = False

    def present(self) -> tuple[int, int]:
        """(valid, payload) for this cycle."""
        if not self.showing and self.next < len(self.beats):
            self.showing = self.rng.random() >= self.gap
        if self.showing:
            return 1, self.beats[self.next]
        return 0, self.rng.getrandbits(self.width) if self.width else 0

    def sampled(self, valid: int, ready: int, cycle: int, transcript: Transcript) -> None:
        if valid and ready:
            transcript.in_cycles.append(cycle)
            self.next += 1
            self.showing = False


class Monitor:
    """Drives the output's ready (low with probability `stall` per cycle) and records beats."""

    def __init__(self, case: StreamCase):
        self.stall = case.stall
        self.rng = random.Random(case.seed + 1)
        self.expected = case.outputs
        self.drain = case.drain
        self.max_cycles = case.max_cycles

    def ready(self) -> int:
        return int(self.rng.random() >= self.stall)

    def sampled(self, valid: int, ready: int, payload: int, cycle: int,
                transcript: Transcript) -> None:
        if valid and ready:
            transcript.outputs.append(payload)
            transcript.out_cycles.append(cycle)
        transcript.cycles = cycle + 1

    def done(self, transcript: Transcript) -> bool:
        """All expected beats seen and `drain` quiet cycles watched since, or out of time."""
        if transcript.cycles >= self.max_cycles:
            return True
        if len(transcript.outputs) < self.expected:
            return False
        return transcript.cycles > transcript.out_cycles[-1] + self.drain


def check_outputs(block: str, expected: np.ndarray, actual: np.ndarray) -> None:
    """Assert two [samples, outputs] integer arrays are equal, naming the first mismatch."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert actual.shape == expected.shape, (
        f"{block}: expected {expected.shape[0]} samples of {expected.shape[1:]} outputs, "
        f"got {actual.shape[0]} of {actual.shape[1:]}")
    bad = np.argwhere(expected != actual)
    if len(bad):
        sample, index = (int(v) for v in bad[0][:2])
        raise AssertionError(
            f"{block}: sample {sample} output {index}: expected {int(expected[sample, index])}, "
            f"actual {int(actual[sample, index])} ({len(bad)} of {expected.size} outputs differ)")
