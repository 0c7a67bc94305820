"""The host's side of the link framing (`boards.link`): requests to bytes, bytes to answers.

Pure Python, so a host program needs only a serial port library to talk to a board:

    port.write(encode_request(sample, in_shape))
    outputs, label = decode_response(port.read(response_length(out_shape, n)), out_shape, n)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Shape, ShapeLike

from boards.link import REQUEST, RESPONSE, class_bytes, element_bytes


def _check_range(values: np.ndarray, shape: Shape) -> None:
    low, high = (-(1 << shape.width - 1), (1 << shape.width - 1) - 1) if shape.signed \
        else (0, (1 << shape.width) - 1)
    bad = values[(values < low) | (values > high)]
    if bad.size:
        raise ValueError(f"input element {int(bad[0])} is outside {shape!r} [{low}, {high}]")


def encode_request(sample: Sequence[int] | np.ndarray, shape: ShapeLike) -> bytes:
    """`REQUEST`, then each element in B little-endian bytes (two's complement)."""
    shape = Shape.cast(shape)
    values = np.asarray(sample, np.int64).reshape(-1)
    _check_range(values, shape)
    size = element_bytes(shape)
    return bytes([REQUEST]) + b"".join(
        int(v).to_bytes(size, "little", signed=shape.signed) for v in values)


def response_length(shape: ShapeLike, count: int) -> int:
    """Bytes of one answer: header, `count` elements, class."""
    return 1 + count * element_bytes(Shape.cast(shape)) + class_bytes(count)


def decode_response(data: bytes, shape: ShapeLike, count: int) -> tuple[np.ndarray, int]:
    """(the `count` output elements, the class) of one answer; ValueError on a bad frame."""
    shape = Shape.cast(shape)
    if len(data) != response_length(shape, count) or data[0] != RESPONSE:
        raise ValueError(f"a response must be {response_length(shape, count)} bytes starting "
                         f"with {RESPONSE:#04x}, not {len(data)} bytes starting with "
                         f"{data[:1].hex() or 'nothing'}")
    size = element_bytes(shape)
    body = data[1:1 + count * size]
    outputs = np.array([int.from_bytes(body[k:k + size], "little", signed=shape.signed)
                        for k in range(0, len(body), size)], np.int64)
    return outputs, int.from_bytes(data[1 + count * size:], "little")
