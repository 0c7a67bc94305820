"""Runs a `StreamCase` through a component's `i_stream` -> `o_stream` on Amaranth's simulator."""
from __future__ import annotations

from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.sim import Simulator

from sim.bench import Driver, Monitor, StreamCase, Transcript


def run_stream(dut: wiring.Component, case: StreamCase) -> Transcript:
    """Drive the case's beats with its gaps and backpressure; return what came out.

    Inputs are set between edges and sampled at the edge (`tick().sample`), so the DUT's
    combinational ready (which depends on the output's ready) is seen as the hardware sees it.
    """
    i, o = dut.i_stream, dut.o_stream
    in_bits, out_bits = Value.cast(i.payload), Value.cast(o.payload)
    driver, monitor, transcript = Driver(case), Monitor(case), Transcript()

    async def bench(ctx) -> None:
        cycle = 0
        while not monitor.done(transcript):
            valid, payload = driver.present()
            ctx.set(i.valid, valid)
            ctx.set(in_bits, payload)
            ctx.set(o.ready, monitor.ready())
            _, _, i_valid, i_ready, o_valid, o_ready, o_bits = await ctx.tick().sample(
                i.valid, i.ready, o.valid, o.ready, out_bits)
            driver.sampled(i_valid, i_ready, cycle, transcript)
            monitor.sampled(o_valid, o_ready, o_bits, cycle, transcript)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return transcript
