"""The host link: an accelerator behind a UART, one sample per request.

Framing (bytes on the wire, 8N1; see docs/boards.md):

    host -> board:  0xA5, then the K input elements,  B_in  bytes each
    board -> host:  0x5A, then the N output elements, B_out bytes each, then the class, B_cls bytes

An element of w bits takes B = ceil(w/8) bytes, little-endian, two's complement for signed
types (the board keeps the low w bits of what the host sends; the board sign- or
zero-extends what it sends). The class is the index of the first maximum output (numpy's
argmax), unsigned, B_cls = ceil(bits(N-1)/8) bytes (at least 1). Elements cross the
accelerator's streams as beats of lanes: element e is lane e % L of beat e // L.

Bytes outside a request are ignored until a request header, so a host that lost its place
sends 1 + K*B_in zero bytes: they finish any half-received request (whose answer the host
then discards) and are otherwise ignored. The host sends one request and reads its answer
before the next; the UART receiver holds one byte, and a byte arriving while the
accelerator still holds the previous one is an overrun (`error`).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, ShapeLike, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from boards.uart import UartRx, UartTx
from hw.shapes import index_shape

REQUEST = 0xA5
RESPONSE = 0x5A


def element_bytes(shape: Shape) -> int:
    """B = ceil(w/8): bytes per element of `shape` on the wire."""
    return max(1, -(-Shape.cast(shape).width // 8))


def class_bytes(outputs: int) -> int:
    """Bytes of the class index (0 .. outputs-1) on the wire."""
    return element_bytes(index_shape(outputs))


def payload_of(accelerator: wiring.Component, port: str) -> ShapeLike:
    """The payload shape of the accelerator's stream port `port`."""
    member = accelerator.signature.members.get(port)
    if member is None or not (member.is_signature
                              and isinstance(member.signature, stream.Signature)):
        raise ValueError(f"the accelerator must have a stream port '{port}', not {member!r}")
    return member.signature.members["payload"].shape


def lanes_of(payload: ShapeLike) -> tuple[Shape, int]:
    """(element shape, lanes) of a payload `[L] x shape`, or of one element."""
    if isinstance(payload, data.ArrayLayout):
        return Shape.cast(payload.elem_shape), payload.length
    return Shape.cast(payload), 1


class Deserializer(wiring.Component):
    """Request bytes in, the sample's beats out: waits for `REQUEST`, then assembles `count`
    elements (B bytes each, little-endian) into beats of `payload` (`[L] x shape` or one
    element). A byte is taken only while no beat waits, so the accelerator's backpressure
    reaches the UART."""

    def __init__(self, payload: ShapeLike, *, count: int):
        (self.shape, self.lanes), self.count = lanes_of(payload), count
        self.bytes = element_bytes(self.shape)
        super().__init__({"i_stream": In(stream.Signature(8)),
                          "o_stream": Out(stream.Signature(payload))})

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        width = self.shape.width
        in_frame = Signal()
        element = Signal(index_shape(self.count))
        lane = Signal(index_shape(self.lanes))
        byte = Signal(index_shape(self.bytes))
        partial = Signal(8 * self.bytes)
        value = Cat(partial[8:], i.payload)  # the element so far, with this byte on top
        beat = Signal(self.lanes * width)
        m.d.comb += [i.ready.eq(~in_frame | ~o.valid), o.payload.eq(beat)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)

        with m.If(i.valid & i.ready):
            with m.If(~in_frame):
                m.d.sync += in_frame.eq(i.payload == REQUEST)
            with m.Elif(byte != self.bytes - 1):
                m.d.sync += [partial.eq(value), byte.eq(byte + 1)]
            with m.Else():
                last_lane = (lane == self.lanes - 1) | (element == self.count - 1)
                m.d.sync += [beat.word_select(lane, width).eq(value[:width]), byte.eq(0),
                             lane.eq(Mux(last_lane, 0, lane + 1)), element.eq(element + 1)]
                with m.If(last_lane):
                    m.d.sync += o.valid.eq(1)
                with m.If(element == self.count - 1):
                    m.d.sync += [in_frame.eq(0), element.eq(0)]
        return m


class _Send(enum.Enum):
    HEADER = 0
    TAKE = 1
    ELEMENT = 2
    CLASS = 3


class Serializer(wiring.Component):
    """A sample's output beats in (`payload`: `[L] x shape` or one element), response bytes
    out: `RESPONSE`, the `count` elements (B bytes each, little-endian, sign- or
    zero-extended), then the index of the first maximum element. The argmax is a running
    compare, one element at a time, as the elements go out (the UART's pace leaves it all
    the time it needs)."""

    def __init__(self, payload: ShapeLike, *, count: int):
        (self.shape, self.lanes), self.count = lanes_of(payload), count
        self.bytes, self.class_bytes = element_bytes(self.shape), class_bytes(count)
        super().__init__({"i_stream": In(stream.Signature(payload)),
                          "o_stream": Out(stream.Signature(8))})

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        width = self.shape.width
        state = Signal(_Send)
        beat = Signal(self.lanes * width)
        current = beat[:width].as_signed() if self.shape.signed else beat[:width]
        element = Signal(index_shape(self.count))
        lane = Signal(index_shape(self.lanes))
        best = Signal(self.shape)
        label = Signal(index_shape(self.count))

        # A word (an extended element or the class) goes out a byte at a time, LSB first:
        # byte 0 comes from the word itself, the later ones from `rest`.
        word_bits = 8 * max(self.bytes, self.class_bytes)
        fresh, rest = Signal(word_bits), Signal(word_bits)
        byte = Signal(index_shape(max(self.bytes, self.class_bytes)))
        word = Mux(byte == 0, fresh, rest)
        m.d.comb += [fresh.eq(Mux(state == _Send.CLASS, label, current)),
                     o.payload.eq(Mux(state == _Send.HEADER, RESPONSE, word[:8]))]
        sent = o.valid & o.ready
        with m.If(sent):
            m.d.sync += [rest.eq(word >> 8), byte.eq(byte + 1)]

        with m.Switch(state):
            with m.Case(_Send.HEADER):
                m.d.comb += o.valid.eq(i.valid)
                with m.If(sent):
                    m.d.sync += [state.eq(_Send.TAKE), byte.eq(0)]
            with m.Case(_Send.TAKE):
                m.d.comb += i.ready.eq(1)
                with m.If(i.valid):
                    m.d.sync += [beat.eq(i.payload), lane.eq(0), state.eq(_Send.ELEMENT)]
            with m.Case(_Send.ELEMENT):
                m.d.comb += o.valid.eq(1)
                with m.If(sent & (byte == 0)):
                    self._argmax(m, current, element, best, label)
                with m.If(sent & (byte == self.bytes - 1)):
                    m.d.sync += [byte.eq(0), element.eq(element + 1), lane.eq(lane + 1),
                                 beat.eq(beat >> width)]
                    with m.If(element == self.count - 1):
                        m.d.sync += [state.eq(_Send.CLASS), element.eq(0)]
                    with m.Elif(lane == self.lanes - 1):
                        m.d.sync += state.eq(_Send.TAKE)
            with m.Case(_Send.CLASS):
                m.d.comb += o.valid.eq(1)
                with m.If(sent & (byte == self.class_bytes - 1)):
                    m.d.sync += [byte.eq(0), state.eq(_Send.HEADER)]
        return m

    def _argmax(self, m: Module, current, element, best, label) -> None:
        """The first maximum so far: the first element, then any strictly greater one."""
        with m.If((element == 0) | (current > best)):
            m.d.sync += [best.eq(current), label.eq(element)]


class HostLink(wiring.Component):
    """`accelerator` behind the UART framing above: rx -> UartRx -> Deserializer ->
    accelerator -> Serializer -> UartTx -> tx.

    The accelerator is any `wiring.Component` with an `i_stream` and an `o_stream` (payload
    `[L] x shape` or one element) and two ints: `inputs` (K) and `outputs` (N), the elements
    of one sample in and out. `error` pulses on a UART framing error or overrun.
    """

    def __init__(self, accelerator: wiring.Component, *, divisor: int):
        counts = [getattr(accelerator, name, None) for name in ("inputs", "outputs")]
        if not all(isinstance(c, int) and c >= 1 for c in counts):
            raise ValueError(f"the accelerator must have positive int 'inputs' and 'outputs' "
                             f"(elements per sample), not {counts[0]!r} and {counts[1]!r}")
        self.accelerator = accelerator
        self.inputs, self.outputs = counts
        self.receiver, self.transmitter = UartRx(divisor), UartTx(divisor)
        self.deserializer = Deserializer(payload_of(accelerator, "i_stream"), count=self.inputs)
        self.serializer = Serializer(payload_of(accelerator, "o_stream"), count=self.outputs)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.receiver = self.receiver
        m.submodules.deserializer = self.deserializer
        m.submodules.accelerator = self.accelerator
        m.submodules.serializer = self.serializer
        m.submodules.transmitter = self.transmitter
        wiring.connect(m, self.receiver.o_stream, self.deserializer.i_stream)
        wiring.connect(m, self.deserializer.o_stream, self.accelerator.i_stream)
        wiring.connect(m, self.accelerator.o_stream, self.serializer.i_stream)
        wiring.connect(m, self.serializer.o_stream, self.transmitter.i_stream)
        m.d.comb += [self.receiver.rx.eq(self.rx), self.tx.eq(self.transmitter.tx),
                     self.error.eq(self.receiver.error)]
        return m
