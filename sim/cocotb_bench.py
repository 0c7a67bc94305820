"""The cocotb side of the stream bench: the same driver/monitor loop on Icarus or Verilator.

`sim.runner` starts the simulator with `+case=FILE` (a saved `StreamCase`) and
`+transcript=FILE` (where the `Transcript` goes); pytest checks the transcript afterwards.
Each cycle: at the falling edge set the inputs, at ReadOnly sample what the next rising edge
will see. Ports are the Verilog names of the component's signature (`i_stream__valid`, ...).
"""
from __future__ import annotations

from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from sim.bench import Driver, Monitor, StreamCase, Transcript

RESET_CYCLES = 2


def _bits(handle) -> int:
    value = handle.value
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


@cocotb.test()
async def stream_bench(dut) -> None:
    case = StreamCase.load(Path(cocotb.plusargs["case"]))
    driver, monitor, transcript = Driver(case), Monitor(case), Transcript()
    i_valid, i_ready, i_payload = dut.i_stream__valid, dut.i_stream__ready, dut.i_stream__payload
    o_valid, o_ready, o_payload = dut.o_stream__valid, dut.o_stream__ready, dut.o_stream__payload

    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    i_valid.value = 0
    o_ready.value = 0
    await ClockCycles(dut.clk, RESET_CYCLES)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    cycle = 0
    while not monitor.done(transcript):
        valid, payload = driver.present()
        i_valid.value = valid
        i_payload.value = payload
        o_ready.value = monitor.ready()
        await ReadOnly()
        driver.sampled(_bits(i_valid), _bits(i_ready), cycle, transcript)
        out_valid, out_ready = _bits(o_valid), _bits(o_ready)
        # The payload is a don't-care unless it transfers (Icarus may show X there after reset).
        payload = _bits(o_payload) if out_valid and out_ready else 0
        monitor.sampled(out_valid, out_ready, payload, cycle, transcript)
        cycle += 1
        await FallingEdge(dut.clk)
    transcript.save(Path(cocotb.plusargs["transcript"]))
