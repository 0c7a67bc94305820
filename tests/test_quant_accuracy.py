"""The quantizer's accuracy bars on digits-trained models (issue: W8A8 and W4A8 bars).

Agreement is argmax agreement between onnxruntime on the original float model and the
golden integer model, on the 360 held-out test images.
"""
from __future__ import annotations

import numpy as np
import pytest

from quantized import ALL_MODELS, ZOO, data_for, float_predictions, int_predictions, quantized


def _agreement_and_accuracy(name: str, weight_bits: int, scale: str) -> tuple[float, float, float]:
    graph = quantized(name, weight_bits, scale)
    labels = data_for(name, "test").y
    ref, got = float_predictions(name), int_predictions(graph, name)
    return float(np.mean(ref == got)), float(np.mean(ref == labels)), float(np.mean(got == labels))


# (scale mode, minimum agreement, maximum accuracy loss): the bars for the default
# dyadic mode; the multiplier-free pow2 mode rounds every scale up to a power of two (up to
# one bit of resolution lost per tensor), so its own bars are one step looser.
W8A8_BARS = [("dyadic", 0.995, 0.004), ("pow2", 0.99, 0.006)]
W4A8_BARS = [("dyadic", 0.97), ("pow2", 0.95)]


@pytest.mark.parametrize(("scale", "min_agreement", "max_loss"), W8A8_BARS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_w8a8_agrees_with_float(name: str, scale: str, min_agreement: float, max_loss: float) -> None:
    agreement, float_acc, int_acc = _agreement_and_accuracy(name, 8, scale)
    assert agreement >= min_agreement, f"{name} W8A8 {scale}: agreement {agreement:.4f}"
    assert int_acc >= float_acc - max_loss, f"{name} W8A8 {scale}: accuracy {int_acc:.4f} vs float {float_acc:.4f}"


@pytest.mark.parametrize(("scale", "min_agreement"), W4A8_BARS)
@pytest.mark.parametrize("name", ZOO)
def test_w4a8_agrees_with_float(name: str, scale: str, min_agreement: float) -> None:
    agreement, _, _ = _agreement_and_accuracy(name, 4, scale)
    assert agreement >= min_agreement, f"{name} W4A8 {scale}: agreement {agreement:.4f}"
