"""Benches of the windowed engines: NCHW samples in as HWC beats, output pixels back to NCHW,
checked against quant's golden kernel. The conv engine's stimulus lives here; the pool bench
(`sim.tb_pool`) and the window generator's test reuse the stream helpers.

Every windowed engine exposes `op`, `window` (its `hw.window_geometry.Window`), `in_lanes`,
`out_channels`, `per_pixel` (cycles per output pixel at full rate), `pixel_beats` (output
beats per pixel) and `latency`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from amaranth.lib import data, wiring

from hw.fold import Fold, to_beats
from hw.layers.conv2d import ConvEngine
from hw.window_geometry import full_rate_cycles
from quant import ir
from quant.ops import kernel_for
from quant.qtypes import IntType
from sim.bench import StreamCase, Transcript, check_outputs
from sim.payload import pack, unpack
from sim.vectors import operands, random_gemm

Run = Callable[[StreamCase], Transcript]


def padded_taps(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                pads: tuple[int, int, int, int], dilations: tuple[int, int],
                value: int) -> np.ndarray:
    """A plain numpy reference for windows: [kh*kw, N, C, OH, OW], tap (ky, kx) of output
    (oy, ox) being x padded with `value` at row oy*sh + ky*dh, column ox*sw + kx*dw."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                    constant_values=value)
    oh = (padded.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (padded.shape[3] - (kw - 1) * dw - 1) // sw + 1
    return np.stack([padded[:, :, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                            kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
                     for ky in range(kh) for kx in range(kw)])


def hwc_case(layout: data.Layout, x: np.ndarray, lanes: int, outputs: int, *, gap: float = 0.0,
             stall: float = 0.0, seed: int = 0) -> StreamCase:
    """x [N, C, H, W] in HWC order as beats of `lanes` (lanes | C); `outputs` beats expected."""
    flat = x.transpose(0, 2, 3, 1).reshape(len(x), -1)
    beats = to_beats(flat, lanes).reshape(-1, lanes)
    return StreamCase(inputs=[pack(layout, [int(v) for v in beat]) for beat in beats],
                      in_width=layout.size, outputs=outputs, gap=gap, stall=stall, seed=seed)


def pixel_outputs(engine: wiring.Component, transcript: Transcript, samples: int) -> np.ndarray:
    """[N, C_out, OH, OW] from the output beats: `pixel_beats` per pixel in raster order,
    channels in lane order (padding lanes dropped)."""
    win = engine.window
    lanes = np.array([unpack(engine.o_stream.p.shape(), bits) for bits in transcript.outputs],
                     np.int64)
    expected = samples * win.out_height * win.out_width * engine.pixel_beats
    assert len(lanes) == expected, (
        f"{name_of(engine)}: {len(lanes)} output beats in {transcript.cycles} cycles, expected "
        f"{expected}")
    pixels = lanes.reshape(samples, win.out_height, win.out_width, -1)[..., :engine.out_channels]
    return pixels.transpose(0, 3, 1, 2)


def name_of(engine: wiring.Component) -> str:
    return f"{type(engine.op).__name__} '{engine.op.name}'"


def check_engine(engine: wiring.Component, x: np.ndarray, run: Run, *, gap: float = 0.0,
                 stall: float = 0.0, seed: int = 0) -> Transcript:
    """Run x [N, C, H, W] through a windowed engine with `run`; assert every output equals the
    golden kernel's (`quant.ops.kernel_for(engine.op)`)."""
    win = engine.window
    outputs = len(x) * win.out_height * win.out_width * engine.pixel_beats
    transcript = run(hwc_case(engine.i_stream.p.shape(), x, engine.in_lanes, outputs,
                              gap=gap, stall=stall, seed=seed))
    expected = kernel_for(engine.op)(engine.op, x)
    actual = pixel_outputs(engine, transcript, len(x))
    check_outputs(name_of(engine), expected.reshape(len(x), -1), actual.reshape(len(x), -1))
    return transcript


def check_full_rate_cycles(engine: wiring.Component, transcript: Transcript,
                           samples: int) -> int:
    """Without gaps or backpressure, from the first input beat taken to the last output beat
    taken: `hw.window_geometry.full_rate_cycles` plus the engine's latency. Returns the count."""
    cycles = transcript.out_cycles[-1] - transcript.in_cycles[0] + 1
    expected = full_rate_cycles(engine.window, engine.per_pixel, engine.in_lanes,
                                samples) + engine.latency
    assert cycles == expected, (
        f"{name_of(engine)}: {samples} samples took {cycles} cycles, expected {expected} "
        f"({engine.per_pixel} beats per pixel, latency {engine.latency})")
    return cycles


def output_bound(engine: wiring.Component) -> bool:
    """Whether every output row's new input rows load within the previous output row,
    (hi(m+1) - hi(m)) * W*C/L_in <= OW * per_pixel, across the sample boundary too. Then the
    engine never waits for input at full rate: its output never idles after the first sample's
    first rows are in."""
    win = engine.window
    his = [win.bounds(0, oy)[1] for oy in range(win.out_height)]
    steps = np.diff(his + [win.height + his[0]])
    row_beats = win.width * win.channels // engine.in_lanes
    return bool(steps.max() * row_beats <= win.out_width * engine.per_pixel)


def check_output_bound(engine: wiring.Component, transcript: Transcript, samples: int) -> None:
    """For an `output_bound` engine at full rate: an output beat every per_pixel / pixel_beats
    cycles without a break, across rows and samples, starting once the first sample's first
    hi(0) input rows are in: hi(0)*W*C/L_in + samples*OH*OW*per_pixel + latency cycles."""
    win, name = engine.window, name_of(engine)
    assert output_bound(engine), f"{name}: the input, not the engine, is the bottleneck"
    spacing = engine.per_pixel // engine.pixel_beats
    gaps = np.flatnonzero(np.diff(transcript.out_cycles) != spacing)
    assert not len(gaps), f"{name}: output beat {gaps[:1]} not {spacing} cycles after the last"
    fill = win.bounds(0, 0)[1] * win.width * win.channels // engine.in_lanes
    cycles = transcript.out_cycles[-1] - transcript.in_cycles[0] + 1
    expected = fill + samples * win.out_height * win.out_width * engine.per_pixel + engine.latency
    assert cycles == expected, f"{name}: {samples} samples took {cycles} cycles, not {expected}"


def random_conv(rng: np.random.Generator, *, in_shape: tuple[int, int, int], out_channels: int,
                kernel: tuple[int, int], in_type: IntType, out_type: IntType, weight_bits: int,
                strides: tuple[int, int] = (1, 1), pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                dilations: tuple[int, int] = (1, 1), group: int = 1, pow2: bool = False,
                relu: bool = False, name: str = "conv") -> ir.Conv:
    """A random integer Conv built like `sim.vectors.random_gemm` (channel 0's weights all +max,
    channel 1's all -max, so extreme inputs reach the proven accumulator bound) with a random
    pad value (input zero point) in the input range."""
    per_group = in_shape[0] // group
    gemm = random_gemm(rng, outputs=out_channels, inputs=per_group * kernel[0] * kernel[1],
                       in_type=in_type, weight_bits=weight_bits, out_type=out_type, pow2=pow2,
                       relu=relu, name=name)
    return ir.Conv(name=name, inputs=["x"], outputs=["y"],
                   weight=gemm.weight.reshape(out_channels, per_group, *kernel), bias=gemm.bias,
                   requant=gemm.requant, strides=strides, pads=pads, dilations=dilations,
                   group=group, pad_value=int(rng.integers(in_type.qmin, in_type.qmax,
                                                           endpoint=True)),
                   acc_bits=gemm.acc_bits)


def tensors(itype: IntType, samples: int, shape: tuple[int, int, int],
            rng: np.random.Generator) -> np.ndarray:
    """[samples, C, H, W] of `itype`: all max, all min, alternating, then random
    (`sim.vectors.operands`)."""
    return operands(itype, samples, int(np.prod(shape)), rng).reshape(samples, *shape)


def random_conv_engine(bits: int, fold: Fold, *, in_shape: tuple[int, int, int],
                       in_lanes: int = 1, seed: int = 0, samples: int = 3,
                       **layer) -> tuple[ConvEngine, np.ndarray]:
    """A random conv engine (`random_conv` with `layer`'s out_channels, kernel, strides, pads,
    dilations, group) from unsigned to signed `bits`-bit tensors, with a pow2 requantizer and
    ReLU at width 4 and dyadic multipliers otherwise, and `samples` inputs (`tensors`)."""
    rng = np.random.default_rng(seed)
    in_type, out_type = IntType(bits, False), IntType(bits, True)
    op = random_conv(rng, in_shape=in_shape, in_type=in_type, out_type=out_type,
                     weight_bits=bits, pow2=bits == 4, relu=bits == 4, **layer)
    engine = ConvEngine(op, in_shape=in_shape, in_type=in_type, out_type=out_type, fold=fold,
                        in_lanes=in_lanes)
    return engine, tensors(in_type, samples, in_shape, rng)


def graph_conv(graph: ir.IntGraph, op: ir.Conv, fold: Fold, in_lanes: int = 1) -> ConvEngine:
    """The engine of one Conv of an integer graph, shaped and typed by the graph's tensors."""
    source = graph.tensors[op.inputs[0]]
    return ConvEngine(op, in_shape=source.shape, in_type=source.itype,
                      out_type=graph.tensors[op.outputs[0]].itype, fold=fold, in_lanes=in_lanes)
