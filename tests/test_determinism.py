"""Same inputs and options, same bytes: integer models (`intforge quantize`), ONNX exports
(`intforge export-onnx`) and Verilog (`intforge hw`), across runs and across processes with
different hash seeds (so nothing depends on set or dict iteration order, on object ids or
on the time), compared by sha256.

Each flow runs once per hash seed in its own process; the integer model is also made in
this test's process, through the library, and must match the command's bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cliutil import REPO_ROOT, intforge

SEEDS = ("0", "987654")
CALIB = REPO_ROOT / "models" / "digits_calib.npz"
CASES = {  # name -> (float model, quantize options); chosen to cover different code paths
    "digits-default": (REPO_ROOT / "models" / "digits_cnn.onnx", []),
    "gated-entropy-pow2": (REPO_ROOT / "tests" / "models" / "gated.onnx",
                           ["--calibration", "entropy", "--scale", "pow2", "--per-tensor"]),
    "resnet-percentile-w4a6": (REPO_ROOT / "tests" / "models" / "resnet_gap.onnx",
                               ["--calibration", "percentile", "--weight-bits", "4", "--act-bits", "6"]),
}
HW_CASE = "digits-default"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(*args: object, seed: str) -> None:
    result = intforge(*args, hash_seed=seed)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def digests(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{seed: {artifact: sha256}}: every flow run once in a fresh process per hash seed."""
    found: dict[str, dict[str, str]] = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"seed{seed}")
        found[seed] = {}
        for name, (model, options) in CASES.items():
            int_model, export = folder / f"{name}.int.onnx", folder / f"{name}.export.onnx"
            _run("quantize", model, "--calib", CALIB, "-o", int_model, *options, seed=seed)
            _run("export-onnx", int_model, "-o", export, seed=seed)
            found[seed][f"{name} integer model"] = _sha256(int_model)
            found[seed][f"{name} ONNX export"] = _sha256(export)
        build = folder / "build"
        _run("hw", folder / f"{HW_CASE}.int.onnx", "-o", build, seed=seed)
        for path in sorted(build.iterdir()):
            found[seed][f"{HW_CASE} hw {path.name}"] = _sha256(path)
    return found


def test_flows_write_distinct_files(digests):
    """The comparison below means something: every artifact exists and they all differ (but
    for the build folder's copy of its integer model)."""
    hashes = dict(digests[SEEDS[0]])
    assert len(hashes) == 2 * len(CASES) + 4, sorted(hashes)  # top.v, model, plan, report
    assert hashes.pop(f"{HW_CASE} hw model.int.onnx") == hashes[f"{HW_CASE} integer model"]  # a copy
    assert f"{HW_CASE} hw top.v" in hashes
    assert len(set(hashes.values())) == len(hashes)


@pytest.mark.parametrize("kind", ["integer model", "ONNX export", "hw"])
def test_bytes_do_not_depend_on_the_process(digests, kind):
    first, second = (digests[seed] for seed in SEEDS)
    assert first.keys() == second.keys()
    compared = [key for key in first if kind in key]
    assert compared
    assert {key: first[key] for key in compared} == {key: second[key] for key in compared}


def test_library_in_this_process_writes_the_same_integer_model(digests, tmp_path):
    """A third process and hash seed (pytest's), through `quantize_model` and `intfile.save`."""
    from quant import intfile
    from quant.data import load_dataset
    from quant.options import CalibMethod, QuantOptions, ScaleMode
    from quant.pipeline import quantize_model

    model, _ = CASES["gated-entropy-pow2"]
    options = QuantOptions(calibration=CalibMethod.ENTROPY, scale=ScaleMode.POW2, per_channel=False)
    graph = quantize_model(model, load_dataset(CALIB), options, progress=False)
    intfile.save(graph, tmp_path / "gated.int.onnx")
    assert _sha256(tmp_path / "gated.int.onnx") == digests[SEEDS[0]]["gated-entropy-pow2 integer model"]
