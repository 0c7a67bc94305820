"""A testbench that lives inside the simulated design, so no Python runs per clock cycle.

`Harness(dut, case)` wraps a block: one `StreamPlayer` per input stream plays stimulus beats
from a memory into the block, a `Collector` takes the output stream and records every beat
with its cycle into another memory, and `done` rises when the run is over. The testbench
(`sim.cocotb_fast`) only writes the stimulus memories and the configuration ports during
reset, waits for `done`, and reads the memories back: Python works per beat, not per cycle.

The random valid gaps and ready backpressure follow `sim.bench.Driver` and `Monitor`: before
each beat the player idles with probability `gap` per cycle and then holds valid and payload
until the beat is taken; the collector lowers ready with probability `stall` per cycle. Both
draw from xorshift32 generators (a linear-feedback generator) seeded through ports, so one
build serves any stimulus, probabilities and seeds that fit its memories.

Bursts (`gap_stretch`, `stall_stretch`, default 1): an idle or stalled cycle starts a burst
of 1..stretch such cycles (uniform), so a stretch of hundreds holds the output not-ready, or
the input idle, for hundreds of cycles at a time. A stretch of 1 is the per-cycle behaviour
above, bit for bit. The fraction of cycles in bursts is `busy_fraction(p, stretch)`.

Every memory packs a power of two of entries (beats, cycle stamps) into words of up to
`word_bits` bits, entry s of word w being entry `w * per_word + s`. The testbench pays one
simulator access per word, and on Verilator a wide word costs about as much as a narrow one;
Icarus, which evaluates wide vectors slowly every cycle, is better off with narrow words.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.hdl import Cat, Module, Mux, ResetSignal, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.shapes import index_shape
from sim.bench import StreamCase, Transcript

PROBABILITY_BITS = 16  # a probability p is the threshold round(p * 2^16) on 16 random bits
SEED_BITS = 32
STRETCH_BITS = 24  # longest burst: 2^24 - 1 cycles
CYCLE_BITS = 32  # cycle stamps; a run ends by `max_cycles` long before they wrap
WORD_BITS = 1024  # default memory word: as many entries as fit (a power of two)
COLLECT = "collect"  # the name of the collector's ports on the harness


@dataclass
class HarnessCase:
    """Stimulus of one harness run: beats (raw payload bits) per input port, how many output
    beats to wait for, gaps, backpressure and seed as in `sim.bench.StreamCase`."""

    inputs: dict[str, list[int]]
    outputs: int
    gap: float = 0.0
    stall: float = 0.0
    seed: int = 0
    drain: int = 16  # cycles watched after the last expected beat, to catch extra ones
    max_cycles: int = 100_000
    gap_stretch: int = 1  # longest input idle burst (1: per-cycle gaps)
    stall_stretch: int = 1  # longest output not-ready burst (1: per-cycle stalls)

    def __post_init__(self) -> None:
        for name in ("gap_stretch", "stall_stretch"):
            value = getattr(self, name)
            if not (isinstance(value, int) and 1 <= value < 1 << STRETCH_BITS):
                raise ValueError(f"HarnessCase {name} must be an integer in "
                                 f"1..{(1 << STRETCH_BITS) - 1}, not {value!r}")

    @classmethod
    def of(cls, case: StreamCase | HarnessCase, port: str = "i_stream") -> HarnessCase:
        """A single-input `StreamCase` as the case of a block whose input is `port`."""
        if isinstance(case, HarnessCase):
            return case
        return cls(inputs={port: case.inputs}, outputs=case.outputs, gap=case.gap,
                   stall=case.stall, seed=case.seed, drain=case.drain, max_cycles=case.max_cycles)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> HarnessCase:
        return cls(**json.loads(Path(path).read_text()))


def threshold(probability: float) -> int:
    """The generator draws 16 bits r per cycle; the event happens when r < threshold."""
    return min(round(probability * (1 << PROBABILITY_BITS)), (1 << PROBABILITY_BITS) - 1)


def busy_fraction(probability: float, stretch: int = 1) -> float:
    """The long-run fraction of cycles a generator keeps idle (or not ready): each free
    cycle starts a burst with `probability`, a burst lasts (stretch + 1) / 2 cycles on
    average, so the fraction is p*B / (p*B + 1 - p); p itself when stretch is 1."""
    busy = probability * (stretch + 1) / 2
    return busy / (busy + 1 - probability)


def seed_of(seed: int, stream_number: int) -> int:
    """A distinct non-zero 32-bit generator seed for each stream of a case (splitmix32)."""
    z = (seed * 0x9E3779B9 + (stream_number + 1) * 0x7F4A7C15) & 0xFFFFFFFF
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return (z ^ (z >> 16)) or 1


def capacity(beats: int) -> int:
    """Memory entries for `beats` beats: the next power of two (at least 16), so that cases
    of similar size share one build."""
    return max(16, 1 << (max(beats, 1) - 1).bit_length())


def per_word(entry_bits: int, word_bits: int) -> int:
    """Entries of `entry_bits` bits per memory word: the largest power of two that fits
    `word_bits` (at least 1)."""
    return 1 << max((word_bits // entry_bits).bit_length() - 1, 0)


def pack(entries: list[int], entry_bits: int, count: int) -> list[int]:
    """Entries as words of `count` entries each (entry s of word w is entry w*count + s)."""
    return [sum(bits << (slot * entry_bits) for slot, bits in enumerate(entries[w:w + count]))
            for w in range(0, len(entries), count)]


def unpack(words: list[int], entry_bits: int, count: int) -> list[int]:
    """The entries of words of `count` entries each: the inverse of `pack`."""
    mask = (1 << entry_bits) - 1
    return [(word >> (slot * entry_bits)) & mask for word in words for slot in range(count)]


def _packed(entries: int, entry_bits: int, word_bits: int,
            init: list[int] = ()) -> tuple[Memory, int]:
    """A memory of at least `entries` entries packed `per_word` to a word (the first ones
    `init`), and log2(per_word)."""
    count = per_word(entry_bits, word_bits)
    memory = Memory(shape=unsigned(count * entry_bits), depth=max(entries // count, 1),
                    init=pack(list(init), entry_bits, count))
    return memory, count.bit_length() - 1


def _slot(index: Value, log: int) -> Value | int:
    """The entry's place within its word (index mod per_word)."""
    return index[:log] if log else 0


def _random_bits(m: Module, seed: Value) -> Value:
    """32 fresh random bits every cycle from an xorshift32 register; it loads `seed` (0 is
    taken as 1, xorshift's one forbidden state) while reset is high. The top 16 bits decide
    events (`_bursts`), the low 16 the burst lengths."""
    state = Signal(SEED_BITS, init=1, reset_less=True)  # runs without a reset too
    x = state ^ (state << 13)[:SEED_BITS]
    x = x ^ (x >> 17)
    x = x ^ (x << 5)[:SEED_BITS]
    m.d.sync += state.eq(Mux(ResetSignal(), Mux(seed == 0, 1, seed), x))
    return state


def _bursts(m: Module, random: Value, threshold: Value, stretch: Value) -> Value:
    """High in the cycles of random bursts: a burst starts in a free cycle whose top 16 random
    bits are below `threshold` and lasts 1 + floor(r * stretch / 2^16) cycles (r the low 16
    bits: 1..stretch, uniform). With stretch 1 (or 0) it is high exactly in the cycles whose
    top bits are below `threshold`."""
    left = Signal(STRETCH_BITS)  # cycles of the current burst still to come
    start = (left == 0) & (random[SEED_BITS - PROBABILITY_BITS:] < threshold)
    length = (random[:PROBABILITY_BITS] * stretch) >> PROBABILITY_BITS
    m.d.sync += left.eq(Mux(left != 0, left - 1, Mux(start, length, 0)))
    return (left != 0) | start


def player_port(depth: int) -> wiring.Signature:
    """A player's settings (beats to play, gap threshold, generator seed, longest idle
    burst) and status (beats taken)."""
    return wiring.Signature({"count": Out(index_shape(depth + 1)),
                             "gap": Out(PROBABILITY_BITS), "seed": Out(SEED_BITS),
                             "stretch": Out(STRETCH_BITS),
                             "played": In(index_shape(depth + 1))})


def collector_port() -> wiring.Signature:
    """A collector's settings (beats expected, quiet cycles after them, cycle limit, stall
    threshold, generator seed, longest stall burst) and status (done, beats taken, cycles
    run)."""
    return wiring.Signature({"expect": Out(CYCLE_BITS), "drain": Out(CYCLE_BITS),
                             "max_cycles": Out(CYCLE_BITS), "stall": Out(PROBABILITY_BITS),
                             "seed": Out(SEED_BITS), "stretch": Out(STRETCH_BITS),
                             "done": In(1), "count": In(CYCLE_BITS), "cycles": In(CYCLE_BITS)})


class StreamPlayer(wiring.Component):
    """Plays entries 0..count-1 of memory `beats` (written by the testbench, or `init`) on
    `o_stream`, idling before each beat with the `gap` probability (in bursts of up to
    `stretch` cycles); records the cycle each beat was taken in memory `stamps`.

    While valid is low the payload shows random bits, so a block that looks at the payload
    of an invalid beat is caught. Valid depends on registers only, never on ready.
    """

    def __init__(self, signature: stream.Signature, depth: int, word_bits: int = WORD_BITS,
                 init: list[int] = ()):
        self.depth, self.word_bits, self.init = depth, word_bits, init
        self.width = Value.cast(signature.create().payload).shape().width
        super().__init__({"o_stream": Out(signature), "port": In(player_port(depth)),
                          "cycle": In(CYCLE_BITS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        o, port = self.o_stream, self.port
        beats, beats_log = _packed(self.depth, self.width, self.word_bits, self.init)
        stamps, stamps_log = _packed(self.depth, CYCLE_BITS, self.word_bits)
        m.submodules.beats, m.submodules.stamps = beats, stamps
        read, stamp = beats.read_port(domain="comb"), stamps.write_port(granularity=CYCLE_BITS)
        random = _random_bits(m, port.seed)
        noise = random[SEED_BITS - PROBABILITY_BITS:]
        idle = _bursts(m, random, port.gap, port.stretch)
        held = Signal()  # valid was shown and not taken: it must stay
        taken = o.valid & o.ready
        payload = read.data.word_select(_slot(port.played, beats_log), self.width)
        m.d.comb += [
            o.valid.eq((port.played < port.count) & (held | ~idle)),
            read.addr.eq(port.played >> beats_log),
            Value.cast(o.payload).eq(
                Mux(o.valid, payload, noise.replicate(-(-self.width // PROBABILITY_BITS)))),
            stamp.addr.eq(port.played >> stamps_log),
            stamp.data.eq(self.cycle.replicate(1 << stamps_log)),
            stamp.en.eq(taken << _slot(port.played, stamps_log)),
        ]
        m.d.sync += held.eq(o.valid & ~o.ready)
        with m.If(taken):
            m.d.sync += port.played.eq(port.played + 1)
        return m


class Collector(wiring.Component):
    """Takes `i_stream` with random backpressure (`stall` probability, in bursts of up to
    `stretch` cycles) and records each beat
    as `Cat(payload, cycle)` in memory `record` (beats past its depth are counted, not kept).

    `done` rises once `expect` beats were taken and `drain` quiet cycles followed the last
    one, or at `max_cycles` (the same rule as `sim.bench.Monitor`); then ready stays low and
    `cycles` holds the number of cycles run.
    """

    def __init__(self, signature: stream.Signature, depth: int, word_bits: int = WORD_BITS):
        self.depth, self.word_bits = depth, word_bits
        self.width = Value.cast(signature.create().payload).shape().width
        super().__init__({"i_stream": In(signature), "port": In(collector_port()),
                          "cycle": In(CYCLE_BITS)})

    def elaborate(self, platform) -> Module:
        m = Module()
        i, port, cycle = self.i_stream, self.port, self.cycle
        entry_bits = self.width + CYCLE_BITS
        record, log = _packed(self.depth, entry_bits, self.word_bits)
        m.submodules.record = record
        write = record.write_port(granularity=entry_bits)
        stalled = _bursts(m, _random_bits(m, port.seed), port.stall, port.stretch)
        m.d.comb += i.ready.eq(~port.done & ~stalled)
        taken = i.valid & i.ready
        entry = Cat(Value.cast(i.payload), cycle)
        m.d.comb += [write.addr.eq(port.count >> log), write.data.eq(entry.replicate(1 << log)),
                     write.en.eq((taken & (port.count < record.depth << log))
                                 << _slot(port.count, log))]

        last = Signal(CYCLE_BITS)  # cycle of the last beat taken
        count_now, last_now = port.count + taken, Mux(taken, cycle, last)
        m.d.sync += [port.count.eq(count_now), last.eq(last_now)]
        quiet = (count_now >= port.expect) & (cycle >= last_now + port.drain)
        with m.If(~port.done & (quiet | (cycle + 1 >= port.max_cycles))):
            m.d.sync += [port.done.eq(1), port.cycles.eq(cycle + 1)]
        return m


def stream_ports(dut: wiring.Component) -> tuple[list[str], str]:
    """The names of a block's input streams (in signature order) and of its one output."""
    streams = {name: member for name, member in dut.signature.members.items()
               if member.is_signature and isinstance(member.signature, stream.Signature)}
    inputs = [name for name, member in streams.items() if member.flow == In]
    outputs = [name for name, member in streams.items() if member.flow == Out]
    if not inputs or len(outputs) != 1 or COLLECT in inputs:
        raise ValueError(f"Harness needs a block with input streams (none called {COLLECT!r}) "
                         f"and one output stream, not inputs {inputs} and outputs {outputs}")
    return inputs, outputs[0]


class Harness(wiring.Component):
    """player(s) -> dut -> collector, with a free-running cycle counter (0 in the first cycle
    after reset) stamping every transfer.

    Memories are sized for `case` (`capacity`: powers of two); with `preload` the players'
    memories also start out holding the case's beats (a run then needs no Python per beat,
    but the build serves that one stimulus). Everything else is set at run time through
    ports: per input stream `<input>__count`, `__gap`, `__seed`, `__stretch` (settings) and
    `__played` (status); for the output `collect__expect`, `__drain`, `__max_cycles`,
    `__stall`, `__seed`, `__stretch` and `collect__done`, `__count`, `__cycles`.
    Submodules: `player_<input>` (memories `beats`, `stamps`), `collector` (memory
    `record`), `dut`.
    """

    def __init__(self, dut: wiring.Component, case: StreamCase | HarnessCase, *,
                 word_bits: int = WORD_BITS, preload: bool = False):
        self.dut = dut
        self.inputs, self.output = stream_ports(dut)
        case = HarnessCase.of(case, self.inputs[0])
        if set(case.inputs) != set(self.inputs):
            raise ValueError(f"Harness case must give beats for the inputs {self.inputs}, "
                             f"not {sorted(case.inputs)}")
        members = dut.signature.members
        self.players = {name: StreamPlayer(members[name].signature.flip(),
                                           capacity(len(case.inputs[name])), word_bits,
                                           case.inputs[name] if preload else ())
                        for name in self.inputs}
        self.collector = Collector(members[self.output].signature,
                                   capacity(case.outputs + case.drain), word_bits)
        ports = {name: In(player_port(player.depth)) for name, player in self.players.items()}
        super().__init__(ports | {COLLECT: In(collector_port())})

    def elaborate(self, platform) -> Module:
        m = Module()
        cycle = Signal(CYCLE_BITS)
        m.d.sync += cycle.eq(cycle + 1)
        m.submodules.dut = self.dut
        for name, player in self.players.items():
            m.submodules[f"player_{name}"] = player
            wiring.connect(m, wiring.flipped(getattr(self, name)), player.port)
            wiring.connect(m, player.o_stream, getattr(self.dut, name))
            m.d.comb += player.cycle.eq(cycle)
        m.submodules.collector = collector = self.collector
        wiring.connect(m, wiring.flipped(getattr(self, COLLECT)), collector.port)
        wiring.connect(m, getattr(self.dut, self.output), collector.i_stream)
        m.d.comb += collector.cycle.eq(cycle)
        return m


@dataclass(frozen=True)
class Throughput:
    """Timing of a many-sample run from its cycle stamps."""

    samples: int
    latency: int  # cycles from the first input beat taken to the first sample's last output beat
    cycles_per_sample: float  # steady state: between the last beats of the first and last samples


def throughput(transcript: Transcript, beats_per_sample: int) -> Throughput:
    """Latency and cycles per sample of a run whose output is `beats_per_sample` beats per
    sample (needs at least two samples)."""
    ends = transcript.out_cycles[beats_per_sample - 1::beats_per_sample]
    if len(ends) < 2:
        raise ValueError(f"throughput needs at least two samples of {beats_per_sample} beats, "
                         f"not {len(transcript.out_cycles)} beats")
    return Throughput(len(ends), ends[0] - transcript.in_cycles[0] + 1,
                      (ends[-1] - ends[0]) / (len(ends) - 1))
