"""The cocotb side of `sim.player.Harness`: no Python runs while the design runs.

`sim.runner.run_harness` starts the simulator with `+case=FILE` (a saved `HarnessCase`) and
`+transcript=FILE`. During reset this module sets the configuration ports and writes the
stimulus into the players' memories through the simulator's handles; then cocotb's clock
runs and Python waits for one event, the rising edge of `done`. Afterwards it reads the
collector's and players' memories through the handles and saves a `sim.bench.Transcript`,
which pytest decodes and checks as it does the per-edge bench's.

`+baseline=1` is the benchmark's reference, run on a build whose players start out holding
the stimulus (`Harness(..., preload=True)`): the same configuration, then the wait, and
nothing written or read back.
"""
from __future__ import annotations

import heapq
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from sim.bench import Transcript
from sim.player import COLLECT, CYCLE_BITS, HarnessCase, pack, seed_of, threshold, unpack

RESET_CYCLES = 2


def _bits(handle) -> int:
    return handle.value.to_unsigned()


def _per_word(memory, entry_bits: int) -> int:
    """Entries per word of a packed memory (see `sim.player`), from its word width."""
    return len(memory[0]) // entry_bits


def write_entries(memory, entry_bits: int, entries: list[int], name: str) -> None:
    """Write entries into a packed memory, one word at a time through the simulator handle."""
    count = _per_word(memory, entry_bits)
    if len(entries) > len(memory) * count:
        raise ValueError(f"Harness {name}: {len(entries)} entries do not fit its "
                         f"{len(memory) * count}; build the harness for this case")
    for index, word in enumerate(pack(entries, entry_bits, count)):
        memory[index].value = word


def read_entries(memory, entry_bits: int, number: int) -> list[int]:
    """The first `number` entries of a packed memory, one word at a time."""
    count = _per_word(memory, entry_bits)
    number = min(number, len(memory) * count)
    words = [memory[index].value.to_unsigned() for index in range(-(-number // count))]
    return unpack(words, entry_bits, count)[:number]


def configure(dut, case: HarnessCase) -> None:
    """Set every configuration port (held for the whole run)."""
    settings = {}
    for number, (name, beats) in enumerate(case.inputs.items()):
        settings |= {f"{name}__count": len(beats), f"{name}__gap": threshold(case.gap),
                     f"{name}__seed": seed_of(case.seed, number + 1),
                     f"{name}__stretch": case.gap_stretch}
    settings |= {f"{COLLECT}__expect": case.outputs, f"{COLLECT}__drain": case.drain,
                 f"{COLLECT}__max_cycles": case.max_cycles,
                 f"{COLLECT}__stall": threshold(case.stall),
                 f"{COLLECT}__seed": seed_of(case.seed, 0),
                 f"{COLLECT}__stretch": case.stall_stretch}
    for port, value in settings.items():
        getattr(dut, port).value = value


def load(dut, case: HarnessCase) -> None:
    """Write each input's beats into its player's `beats` memory."""
    for name, beats in case.inputs.items():
        player = getattr(dut, f"player_{name}")
        write_entries(player.beats, len(player.o_stream__payload), beats, f"player_{name}")


def read_back(dut, case: HarnessCase) -> Transcript:
    """The transcript from the collector's record and the players' stamps (input cycles of
    all players merged in cycle order)."""
    payload_bits = len(dut.collector.i_stream__payload)
    entries = read_entries(dut.collector.record, payload_bits + CYCLE_BITS,
                           _bits(getattr(dut, f"{COLLECT}__count")))
    in_cycles = heapq.merge(*(read_entries(getattr(dut, f"player_{name}").stamps, CYCLE_BITS,
                                           _bits(getattr(dut, f"{name}__played")))
                              for name in case.inputs))
    return Transcript(outputs=[e & ((1 << payload_bits) - 1) for e in entries],
                      in_cycles=list(in_cycles), out_cycles=[e >> payload_bits for e in entries],
                      cycles=_bits(getattr(dut, f"{COLLECT}__cycles")))


@cocotb.test()
async def harness_bench(dut) -> None:
    case = HarnessCase.load(Path(cocotb.plusargs["case"]))
    baseline = cocotb.plusargs.get("baseline") == "1"
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    configure(dut, case)
    await ClockCycles(dut.clk, RESET_CYCLES)
    if not baseline:
        load(dut, case)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(getattr(dut, f"{COLLECT}__done"))
    await ReadOnly()  # done's edge may come before the other registers of that edge settle
    if not baseline:
        read_back(dut, case).save(Path(cocotb.plusargs["transcript"]))
