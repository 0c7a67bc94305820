"""Runs stream cases through a component on Amaranth's simulator: `run_stream` for a block
with one `i_stream` and one `o_stream`, `run_ports` for any number of named input and output
streams (a join such as Add, a fork with two outputs)."""
from __future__ import annotations

from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.sim import Simulator

from sim.bench import Driver, Monitor, StreamCase, Transcript


def run_stream(dut: wiring.Component, case: StreamCase) -> Transcript:
    """Drive the case's beats with its gaps and backpressure; return what came out."""
    ports = run_ports(dut, {"i_stream": case}, {"o_stream": case})
    i, o = ports["i_stream"], ports["o_stream"]
    return Transcript(outputs=o.outputs, in_cycles=i.in_cycles, out_cycles=o.out_cycles,
                      cycles=o.cycles)


def run_ports(dut: wiring.Component, inputs: dict[str, StreamCase],
              outputs: dict[str, StreamCase]) -> dict[str, Transcript]:
    """Drive each input port (by member name) with its case's beats, gap and seed, and each
    output port with its case's backpressure and seed, until every output's monitor is done.
    Returns a transcript per port: `in_cycles` for inputs; `outputs`, `out_cycles`, `cycles`
    for outputs. Distinct seeds per port give independent gaps and stalls.

    Inputs are set between edges and sampled at the edge (`tick().sample`), so the DUT's
    combinational ready (which depends on the output's ready) is seen as the hardware sees it.
    """
    drivers = {name: Driver(case) for name, case in inputs.items()}
    monitors = {name: Monitor(case) for name, case in outputs.items()}
    transcripts = {name: Transcript() for name in [*inputs, *outputs]}
    streams = {name: getattr(dut, name) for name in transcripts}
    watched = [signal for name in transcripts for signal in
               (streams[name].valid, streams[name].ready, Value.cast(streams[name].payload))]

    async def bench(ctx) -> None:
        cycle = 0
        while not all(m.done(transcripts[name]) for name, m in monitors.items()):
            for name, driver in drivers.items():
                valid, payload = driver.present()
                ctx.set(streams[name].valid, valid)
                ctx.set(Value.cast(streams[name].payload), payload)
            for name, monitor in monitors.items():
                ctx.set(streams[name].ready, monitor.ready())
            sampled = iter((await ctx.tick().sample(*watched))[2:])
            for name in transcripts:
                valid, ready, payload = next(sampled), next(sampled), next(sampled)
                if name in drivers:
                    drivers[name].sampled(valid, ready, cycle, transcripts[name])
                else:
                    monitors[name].sampled(valid, ready, payload, cycle, transcripts[name])
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return transcripts
