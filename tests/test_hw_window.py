# amaranth: UnusedElaboratable=no
"""The window generator on Amaranth's simulator: every beat equals the window that plain numpy
slicing (`sim.tb_conv2d.padded_taps`) cuts from the same tensor, the tap masks match the
padding, and full-rate cycle counts follow `full_rate_cycles`."""
import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hw.window import WindowGenerator
from hw.window_geometry import PAD, Beats, Window, full_rate_cycles
from quant.qtypes import IntType
from sim.amaranth_harness import run_stream
from sim.bench import check_outputs
from sim.payload import unpack
from sim.tb_conv2d import hwc_case, padded_taps, tensors

# name -> (C, H, W, kernel, strides, pads, dilations)
GEOMETRIES = {
    "3x3-same": (3, 6, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "2x3-stride-dilated-asym": (2, 7, 9, (2, 3), (2, 3), (0, 2, 1, 1), (2, 2)),
    "1x1": (4, 3, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    "stride-beyond-kernel": (2, 8, 7, (1, 2), (3, 3), (0, 0, 0, 0), (1, 1)),
    "pads-beyond-image": (1, 2, 3, (3, 2), (2, 1), (2, 1, 2, 2), (2, 3)),
    "whole-image": (2, 3, 4, (3, 4), (1, 1), (0, 0, 0, 0), (1, 1)),
}
TYPES = {4: IntType(4, True), 8: IntType(8, False)}


def expected_beats(win: Window, x: np.ndarray, pad: int, beats: Beats) -> tuple[np.ndarray, ...]:
    """(data [beats, lanes] (padding lanes 0), padding lanes [beats, lanes], real-tap masks
    [beats, taps]) from numpy."""
    geometry = win.kernel, win.strides, win.pads, win.dilations
    cut = padded_taps(x, *geometry, pad)  # [taps, N, C, OH, OW]
    vectors = cut.transpose(1, 3, 4, 0, 2).reshape(len(x), -1, win.length)  # [N, pixels, (t, c)]
    ones = np.ones((1, 1, win.height, win.width), np.int64)
    real = padded_taps(ones, *geometry, 0)[:, 0, 0].reshape(win.taps, -1).T  # [pixels, taps]
    order = np.tile(beats.table, (beats.repeats, 1))  # [per_window, lanes]
    padding = np.broadcast_to(order == PAD, vectors.shape[:2] + order.shape)
    data = np.where(padding, 0, vectors[:, :, np.maximum(order, 0)])
    masks = np.broadcast_to(real[None, :, None, :], vectors.shape[:2] + (len(order), win.taps))
    return (data.reshape(-1, beats.lanes), padding.reshape(-1, beats.lanes),
            masks.reshape(-1, win.taps))


def run_generator(geometry: str, bits: int, in_lanes: int, lanes: int, repeats: int, *,
                  samples: int = 3, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
    c, h, w, kernel, strides, pads, dilations = GEOMETRIES[geometry]
    win = Window(c, h, w, kernel, strides, pads, dilations)
    itype, rng = TYPES[bits], np.random.default_rng(seed)
    pad = int(rng.integers(itype.qmin, itype.qmax, endpoint=True))
    beats = Beats.chunks(win.length, lanes or win.length, repeats)  # lanes 0: a whole window
    shape = signed(bits) if itype.signed else unsigned(bits)
    gen = WindowGenerator(win, shape=shape, in_lanes=in_lanes, pad_value=pad, beats=beats)
    x = tensors(itype, samples, (c, h, w), rng)
    outputs = samples * win.out_height * win.out_width * beats.per_window
    transcript = run_stream(gen, hwc_case(gen.i_stream.p.shape(), x, in_lanes, outputs,
                                          gap=gap, stall=stall, seed=seed))
    out = [unpack(gen.o_stream.p.shape(), bits) for bits in transcript.outputs]
    data, padding, masks = expected_beats(win, x, pad, beats)
    actual = np.array([beat["data"] for beat in out], np.int64)
    check_outputs(f"Window {geometry} (sample = output beat, output = lane)", data,
                  np.where(padding, 0, actual))
    kh, kw = win.kernel
    flags = np.array([[(beat["rows"] >> ky) & (beat["cols"] >> kx) & 1
                       for ky in range(kh) for kx in range(kw)] for beat in out])
    check_outputs(f"Window {geometry} tap masks (sample = output beat, output = tap)", masks,
                  flags)
    return gen, beats, transcript


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("bits, in_lanes, lanes, repeats", [
    (4, 1, 4, 2), (8, 1, 0, 1), (8, 2, 5, 3)], ids=["S4-G2", "one-beat", "S5-G3"])
def test_windows_at_full_rate(geometry, bits, in_lanes, lanes, repeats):
    c = GEOMETRIES[geometry][0]
    in_lanes = in_lanes if c % in_lanes == 0 else c
    gen, beats, transcript = run_generator(geometry, bits, in_lanes, lanes, repeats)
    cycles = transcript.out_cycles[-1] - transcript.in_cycles[0] + 1
    assert cycles == full_rate_cycles(gen.window, beats.per_window, in_lanes, 3) + gen.LATENCY


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("bits", [4, 8])
def test_windows_with_gaps_and_backpressure(geometry, bits):
    run_generator(geometry, bits, GEOMETRIES[geometry][0], 3, 2, gap=0.4, stall=0.4,
                  seed=bits)


def test_full_rate_cycles_by_hand():
    """3x3, stride 1, pad 1 on 1x4x4, one lane, one beat per pixel, two samples: output rows
    need input rows hi = 2, 3, 4, 4 per sample (8 rows in all, 4 cycles each), and each input
    row takes Tw = 4 cycles. Terms hi*Tw + (8 - m)*4: m = 0: 8 + 32 = 40; m = 4 (second sample,
    hi = 4 + 2 = 6): 24 + 16 = 40; every other term is smaller."""
    assert full_rate_cycles(Window(1, 4, 4, (3, 3), pads=(1, 1, 1, 1)), 1, 1, 2) == 40
    # Input-bound: 1x1 kernel, stride 2: rows 0, 2 of each 4-row sample; the last output row
    # needs row 2 of sample 2 (hi = 4 + 3 = 7 rows of Tw = 4*3 = 12): 84 + one row of 2.
    assert full_rate_cycles(Window(3, 4, 4, (1, 1), strides=(2, 2)), 1, 1, 2) == 86


def test_line_buffer_size():
    """3x3 stride 1 pad 1 on 8x8: rows lo..hi = 0..2, 0..3, 1..4, ..., 6..8; consecutive rows
    span 4 (hi(n+1) - lo(n)), the sample boundary 8 - 6 + 2 = 4; one spare: R = 5."""
    assert Window(8, 8, 8, (3, 3), pads=(1, 1, 1, 1)).slots == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=Window(3, 4, 4, (3, 3)), in_lanes=2, pad_value=0),
     "Window input lanes must divide the 3 channels, not 2"),
    (dict(window=Window(3, 4, 4, (3, 3)), in_lanes=3, pad_value=8),
     r"Window pad value must lie in \[-8, 7\], not 8"),
])
def test_generator_rejects_bad_parameters(kwargs, message):
    beats = Beats.chunks(kwargs["window"].length, 4)
    with pytest.raises(ValueError, match=message):
        WindowGenerator(shape=signed(4), beats=beats, **kwargs)


def test_window_must_fit():
    with pytest.raises(ValueError, match=r"Window kernel \(3, 3\) with dilations \(2, 1\) must "
                                         r"fit the padded 4x4 input"):
        Window(1, 4, 4, (3, 3), dilations=(2, 1))
