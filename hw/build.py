"""A build folder: what `intforge hw` writes, and what `intforge sim` loads back.

    BUILD/top.v           the accelerator's Verilog, module `top` (emitted by Amaranth)
    BUILD/model.int.onnx  the integer model it implements (a copy)
    BUILD/plan.json       every op's fold or lanes and cycles, the interval, and the budget
                          asked for
    BUILD/report.json     costs and timing estimates (`hw.report`)

Rebuilding is deterministic: the lanes of every engine and the interval follow from the MAC
layers' folds (`hw.plan.make_plan` with every fold fixed chooses nothing else), so loading
re-plans the model with the recorded folds and checks that every recorded number comes out
the same; `check_verilog` re-emits the Verilog and compares it with top.v's design. Files are
written only once everything is computed, and all of them or none (`_write_all`).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hw.emit import verilog
from hw.fold import Fold
from hw.lower import Accelerator
from hw.plan import Plan, Stage, make_plan
from hw.report import Report, make_report
from quant import intfile, ir
from quant.atomic import atomic_write
from quant.errors import DataError, ModelError

VERILOG, MODEL, PLAN, REPORT = "top.v", "model.int.onnx", "plan.json", "report.json"
FORMAT = 1
SOURCE_LOCATION = re.compile(r'\(\* src = "[^"]*" \*\) ?')


@dataclass
class Build:
    """A loaded build folder: the integer graph and the plan its top.v was made from."""

    folder: Path
    graph: ir.IntGraph
    plan: Plan

    def accelerator(self) -> Accelerator:
        """A fresh `Accelerator` (Amaranth elaborates a component into one design only)."""
        return Accelerator(self.graph, self.plan)


def write_build(folder: str | os.PathLike[str], graph: ir.IntGraph, plan: Plan,
                budget: dict[str, int]) -> Report:
    """Build the accelerator of `graph` as `plan` says and write the build folder (created
    if needed); `budget` records what the plan was asked for (e.g. {"multipliers": 8})."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"cannot write build folder {folder}: it is a file")
    accelerator = Accelerator(graph, plan)
    text = verilog(accelerator).encode()
    report = make_report(plan, accelerator)
    files = {
        VERILOG: text,
        MODEL: intfile.to_model(graph).SerializeToString(deterministic=True),
        PLAN: _json({"format": FORMAT, "budget": budget, "interval": plan.interval,
                     "stages": [_stage_json(s) for s in plan.stages]}),
        REPORT: _json({"budget": budget, **report.to_json()}),
    }
    _write_all(folder, files)
    return report


def load_build(folder: str | os.PathLike[str]) -> Build:
    """The build in `folder`, re-planned from its model and plan.json (ModelError or
    DataError naming the file when anything is missing or does not match)."""
    folder = Path(folder)
    path = folder / PLAN
    if not folder.is_dir() or not path.is_file():
        raise DataError(f"{folder} is not a build folder (no {PLAN}; 'intforge hw' writes one)")
    graph = intfile.load(folder / MODEL)
    try:
        recorded = json.loads(path.read_text())
        if recorded.get("format") != FORMAT:
            raise DataError(f"{path}: build format {recorded.get('format')!r}, this intforge "
                            f"reads format {FORMAT}")
        folds = {s["name"]: Fold(*s["fold"]) for s in recorded["stages"] if s["fold"] is not None}
        stages, interval = recorded["stages"], recorded["interval"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a valid plan ({type(e).__name__}: {e})") from None
    plan = make_plan(graph, folds=folds)
    rebuilt = [_stage_json(s) for s in plan.stages]
    for want, got in zip(stages, rebuilt):
        if want != got:
            raise ModelError(f"{path}: stage '{want.get('name')}' does not match {MODEL} "
                             f"re-planned with the recorded folds ({got}); run 'intforge hw' again")
    if len(stages) != len(rebuilt) or interval != plan.interval:
        raise ModelError(f"{path}: the plan does not match {MODEL} ({len(stages)} stages, "
                         f"interval {interval}; re-planned: {len(rebuilt)}, {plan.interval})")
    return Build(folder, graph, plan)


def check_verilog(build: Build) -> None:
    """Raise ModelError unless the rebuilt accelerator's Verilog is top.v's design. Source
    locations (`(* src = "file:line" *)` attributes, which move whenever intforge's own
    source is edited) are not part of the design and are ignored."""
    path = build.folder / VERILOG
    try:
        on_disk = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if _design(on_disk) != _design(verilog(build.accelerator())):
        raise ModelError(f"{path} is not the design that {MODEL} and {PLAN} give (edited, or "
                         f"written by another intforge version); run 'intforge hw' again")


def _design(text: str) -> str:
    return SOURCE_LOCATION.sub("", text)


def _stage_json(stage: Stage) -> dict:
    return {"name": stage.op.name, "op": type(stage.op).__name__,
            "fold": [stage.fold.outputs, stage.fold.inputs] if stage.fold else None,
            "lanes": stage.lanes, "in_lanes": stage.in_lanes, "cycles": stage.cycles}


def _json(value: dict) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def _write_all(folder: Path, files: dict[str, bytes]) -> None:
    """Write every file, or none: each is first written (atomically) under a staging name,
    and only when all are complete renamed over the old ones. On a failure the staged files
    are removed, and the folder too if this call created it; an older build stays whole."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staged = {name: folder / f".{name}.staged" for name in files}
    try:
        for name, data in files.items():
            with atomic_write(staged[name]) as f:
                f.write(data)
        for name, path in staged.items():
            os.replace(path, folder / name)
    except BaseException:
        for path in staged.values():
            path.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
