"""`intforge board`, run as a user runs it. Bad input: exit 2, one line naming the problem, no
output folder. Real builds (slow): the quantized digits MLP from an `intforge hw` build folder
on the iCEBreaker, with LUT multipliers beside the 8 DSP blocks; the digits CNN (4-bit weights,
pow2 scales) on the iCEBreaker at 30 MHz, fitting, meeting timing and above 10,000 inferences
per second (issue #6's bar)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliutil import assert_user_error, intforge, last_json
from quant import intfile
from quantized import quantized


@pytest.fixture(scope="module")
def mlp_int(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "mlp.int.onnx"
    intfile.save(quantized("mlp"), path)
    return path


BAD = [  # (arguments after "board", with {model} and {tmp}), words in the one-line message
    pytest.param(["de0", "{model}"], ["invalid choice: 'de0'", "icebreaker"], id="unknown-board"),
    pytest.param(["icebreaker", "{tmp}/none.int.onnx"],
                 ["none.int.onnx: no such build folder or integer model"], id="missing-source"),
    pytest.param(["icebreaker", "{tmp}"], ["is not a build folder", "plan.json"],
                 id="folder-without-plan"),
    pytest.param(["icebreaker", "{model}", "--multipliers", "0"],
                 ["--multipliers", "must be a positive integer, not '0'"], id="zero-multipliers"),
    pytest.param(["icebreaker", "{model}", "--multipliers", "4", "--target-cycles", "100"],
                 ["--target-cycles", "not allowed with", "--multipliers"], id="two-budgets"),
    pytest.param(["icebreaker", "{model}", "--clock-mhz", "fast"],
                 ["--clock-mhz", "must be a positive number of MHz, not 'fast'"], id="clock-text"),
    pytest.param(["icebreaker", "{model}", "--clock-mhz", "-12"],
                 ["--clock-mhz", "not '-12'"], id="clock-negative"),
    pytest.param(["icebreaker", "{model}", "--clock-mhz", "1000"],
                 ["board 'icebreaker': the PLL's nearest clock to 1000 MHz is 528 MHz"],
                 id="clock-out-of-reach"),
    pytest.param(["ulx3s", "{model}", "--clock-mhz", "1000"],
                 ["board 'ulx3s': the PLL's nearest clock to 1000 MHz is 400 MHz"],
                 id="ecp5-clock-out-of-reach"),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_input_is_one_line_and_exit_2(args, words, mlp_int, tmp_path):
    filled = [a.format(model=mlp_int, tmp=tmp_path) for a in args]
    assert_user_error(intforge("board", *filled, "-o", tmp_path / "out"), *words)
    assert not (tmp_path / "out").exists()


def test_garbage_model_is_a_user_error(tmp_path):
    garbage = tmp_path / "garbage.int.onnx"
    garbage.write_bytes(b"\x08\x96\x01 not a model \xff" * 20)
    assert_user_error(intforge("board", "icebreaker", garbage), "garbage.int.onnx")
    assert not (tmp_path / "garbage-icebreaker").exists()


@pytest.mark.slow
def test_mlp_build_folder_on_the_icebreaker(mlp_int, tmp_path):
    """12 multipliers and 3 dyadic requantizers (each multiplying in two pieces of one block)
    want 18 blocks of the 8: the 6 requantizer pieces and 2 MAC products get them, 10 MAC
    products are built from logic cells."""
    build = tmp_path / "build"
    assert intforge("hw", mlp_int, "-o", build, "--multipliers", "12").returncode == 0
    result = intforge("board", "icebreaker", build, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = last_json(result.stdout)
    plan = json.loads((build / "plan.json").read_text())
    assert report["fits"] and report["timing_met"] and report["error"] is None
    assert report["warnings"] == []  # among them: DSP blocks used == planned
    assert report["bitstream"] == str(build / "icebreaker" / "top.bin")
    assert Path(report["bitstream"]).stat().st_size == 104_090  # the iCE40UP5K's bitstream
    assert report["clock_mhz"] == 12.0 and report["fmax_mhz"] >= 12.0
    assert report["interval"] == plan["interval"]
    assert report["inferences_per_s"] == pytest.approx(report["fmax_mhz"] * 1e6 / plan["interval"])
    assert report["inferences_per_s"] >= 10_000
    assert report["dsps"] == {"used": 8, "available": 8}
    assert report["multipliers"] == {"dsp": 8, "logic": 10}
    assert report["luts"]["used"] <= report["luts"]["available"] == 5280
    assert "timing met at 12 MHz" in result.stdout


@pytest.mark.slow
def test_digits_cnn_on_the_icebreaker_at_30_mhz(tmp_path):
    """21 MAC multipliers (interval 3,072 cycles) for 4-bit weights and pow2 scales: 8 products
    on the DSP blocks, 13 from logic, the line buffers in block RAM; >= 30 MHz is >= 9,766
    inferences per second at the interval, and the bar asks for 10,000."""
    model = tmp_path / "cnn.int.onnx"
    intfile.save(quantized("digits_cnn", weight_bits=4, scale="pow2"), model)
    result = intforge("board", "icebreaker", model, "--multipliers", "21", "--clock-mhz", "30",
                      "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = last_json(result.stdout)
    assert report["fits"] and report["timing_met"] and report["error"] is None
    assert report["clock_mhz"] == pytest.approx(30, abs=0.1) and report["fmax_mhz"] >= 30
    assert report["interval"] == 3072 and report["inferences_per_s"] >= 10_000
    assert report["luts"]["used"] <= report["luts"]["available"] == 5280
    assert report["dsps"] == {"used": 8, "available": 8}
    assert report["brams"]["used"] <= report["brams"]["available"] == 30
    assert (tmp_path / "cnn-icebreaker" / "top.bin").is_file()
