"""The UART host link on Amaranth's simulator: digits images go in as UART bits, the answers
come back as UART bits, and the decoded outputs and class equal the golden model's."""
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Shape, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

from boards.host import decode_response, encode_request, response_length
from boards.link import RESPONSE, Deserializer, HostLink, Serializer
from boards.uart import UartRx, UartTx, divisor_for
from hw.lower import Accelerator
from hw.plan import make_plan
from quant import evaluate
from quantized import dataset, quantized
from sim.amaranth_harness import run_stream
from sim.bench import StreamCase
from sim.payload import pack, unpack

DIVISOR = 4  # the fastest the receiver allows: 4 cycles a bit


def uart_bits(byte: int, stop: int = 1) -> list[int]:
    return [0, *((byte >> k) & 1 for k in range(8)), stop]


def run_link(dut, requests: list[bytes], answer_length: int, divisor: int = DIVISOR,
             host_divisor: int | None = None) -> list[bytes]:
    """Host side of the wire: send each request bit by bit on `rx` (at `host_divisor` cycles a
    bit), then read `answer_length` bytes from `tx` before the next request."""
    host_divisor = host_divisor or divisor
    answers: list[bytes] = []
    received = bytearray()

    async def host(ctx):
        for request in requests:
            for byte in request:
                for bit in uart_bits(byte):
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(host_divisor)
            while len(received) < answer_length:
                await ctx.tick().repeat(divisor)
            answers.append(bytes(received))
            received.clear()

    async def listen(ctx):
        while True:
            await ctx.negedge(dut.tx)
            await ctx.tick().repeat(divisor // 2)
            assert ctx.get(dut.tx) == 0, "start bit not low in its middle"
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(dut.tx) << k
            await ctx.tick().repeat(divisor)
            assert ctx.get(dut.tx) == 1, "stop bit not high"
            received.append(byte)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(listen, background=True)
    sim.run()
    return answers


@pytest.fixture(scope="module")
def mlp():
    graph = quantized("mlp")
    images = dataset("test", False)
    xq = evaluate.quantize_input(graph, images.x[:6])
    golden = evaluate.run(graph, xq)[graph.outputs[0]]
    return graph, xq, golden


def accelerator(graph) -> Accelerator:
    return Accelerator(graph, make_plan(graph, multipliers=8))


def test_link_answers_digits_images_bit_exact(mlp):
    graph, xq, golden = mlp
    top = accelerator(graph)
    link = HostLink(top, divisor=DIVISOR)
    in_shape = top.i_stream.p.shape().elem_shape
    out_shape = top.out_shape
    assert (in_shape, out_shape) == (unsigned(8), signed(16))
    answers = run_link(link, [encode_request(x.reshape(-1), in_shape) for x in xq],
                       response_length(out_shape, 10))
    assert len(answers) == len(xq)
    for k, (answer, expected) in enumerate(zip(answers, golden)):
        outputs, label = decode_response(answer, out_shape, 10)
        assert outputs.tolist() == expected.tolist(), f"image {k}"
        assert label == int(np.argmax(expected)), f"image {k}"


def test_bytes_outside_a_request_are_ignored_and_zeros_resynchronize(mlp):
    graph, xq, golden = mlp
    top = accelerator(graph)
    out_shape = top.out_shape
    request = encode_request(xq[0].reshape(-1), unsigned(8))
    # Noise before a request; then a half request completed by a zero flush (answer dropped).
    answers = run_link(HostLink(top, divisor=DIVISOR),
                       [bytes([0x00, 0x13, 0x5A]) + request, request[:20] + bytes(len(request)),
                        request], response_length(out_shape, 10))
    for answer in (answers[0], answers[2]):
        outputs, label = decode_response(answer, out_shape, 10)
        assert outputs.tolist() == golden[0].tolist()
        assert label == int(np.argmax(golden[0]))
    assert answers[1][0] == RESPONSE


def test_request_and_response_bytes_by_hand():
    assert encode_request([1, -2, 300], signed(16)) == bytes([0xA5, 1, 0, 0xFE, 0xFF, 0x2C, 1])
    assert encode_request([0, 255], unsigned(8)) == bytes([0xA5, 0, 255])
    assert encode_request([-8, 7], signed(4)) == bytes([0xA5, 0xF8, 0x07])
    with pytest.raises(ValueError, match=r"input element 256 is outside unsigned\(8\)"):
        encode_request([256], unsigned(8))
    outputs, label = decode_response(bytes([0x5A, 0xFE, 0xFF, 0x03, 0x00, 0x01]), signed(16), 2)
    assert outputs.tolist() == [-2, 3] and label == 1
    assert response_length(signed(16), 300) == 1 + 600 + 2


def serializer_bytes(payload, values: list[int], lanes: int, stall: float) -> list[int]:
    serializer = Serializer(payload, count=len(values))
    shape = Shape.cast(payload.elem_shape if lanes > 1 else payload)
    padded = values + [0] * (-len(values) % lanes)
    beats = [pack(payload, padded[k:k + lanes] if lanes > 1 else padded[k])
             for k in range(0, len(padded), lanes)]
    expected = response_length(shape, len(values))
    case = StreamCase(inputs=beats * 2, in_width=Shape.cast(payload).width if lanes == 1
                      else payload.size, outputs=2 * expected, gap=0.3, stall=stall, seed=lanes)
    out = run_stream(serializer, case).outputs
    assert out[:expected] == out[expected:], "the second sample's bytes differ"
    return out[:expected]


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_serializer_sends_sign_extended_bytes_and_the_first_maximum(stall):
    # int12 in 2 bytes, 3 lanes, 5 elements (last beat padded), a tie at the maximum.
    values = [-5, 2047, -2048, 2047, 0]
    out = serializer_bytes(data.ArrayLayout(signed(12), 3), values, 3, stall)
    assert out == [0x5A, 0xFB, 0xFF, 0xFF, 0x07, 0x00, 0xF8, 0xFF, 0x07, 0x00, 0x00, 1]
    # uint3, one element a beat, the maximum last.
    assert serializer_bytes(unsigned(3), [1, 0, 7], 1, stall) == [0x5A, 1, 0, 7, 2]


def test_deserializer_keeps_the_low_bits_of_each_element_in_lanes():
    layout = data.ArrayLayout(signed(4), 2)
    deserializer = Deserializer(layout, count=3)
    sent = [0x77, 0xA5, 0x0F, 0x07, 0x18, 0xA5, 0x01, 0x02, 0x03]  # junk, a request, a request
    case = StreamCase(inputs=sent, in_width=8, outputs=4, gap=0.3, stall=0.5, seed=3)
    beats = [unpack(layout, bits) for bits in run_stream(deserializer, case).outputs]
    assert beats[0] == [-1, 7] and beats[1][0] == -8
    assert beats[2] == [1, 2] and beats[3][0] == 3


def run_uart(frames: list[list[int]], divisor: int) -> tuple[list[int], int]:
    """Bits into a UartRx -> UartTx loop; returns the bytes seen on tx and the error pulses."""
    rx, tx = UartRx(divisor), UartTx(divisor)
    m = Module()
    m.submodules.rx, m.submodules.tx = rx, tx
    wiring.connect(m, rx.o_stream, tx.i_stream)
    seen, errors = [], [0]

    async def host(ctx):
        for bits in frames:
            for bit in bits:
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(divisor)
        await ctx.tick().repeat(12 * divisor)

    async def count_errors(ctx):
        async for _, _, error in ctx.tick().sample(rx.error):
            errors[0] += error

    async def listen(ctx):
        while True:
            await ctx.negedge(tx.tx)
            await ctx.tick().repeat(divisor // 2)
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(tx.tx) << k
            await ctx.tick().repeat(divisor)
            seen.append(byte)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(listen, background=True)
    sim.add_testbench(count_errors, background=True)
    sim.run()
    return seen, errors[0]


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_uart_loops_bytes_back_and_flags_a_framing_error(divisor):
    frames = [uart_bits(0x55), uart_bits(0x00), uart_bits(0xFF, stop=0) + [1] * divisor,
              uart_bits(0xA3)]
    assert run_uart(frames, divisor) == ([0x55, 0x00, 0xA3], 1)


def test_divisor_for_rounds_and_rejects_a_bad_clock():
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(48e6, 3_000_000) == 16
    with pytest.raises(ValueError, match="cannot make 115200 baud"):
        divisor_for(300e3, 115200)
    with pytest.raises(ValueError, match=r"\(divisor 2; must be >= 4, error under 2%\)"):
        divisor_for(1e6, 400_000)
