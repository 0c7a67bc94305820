"""Where benchmark results go: stdout, `bench/results/<name>.md`, and the section of
docs/benchmarks.md between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`, so
that every script regenerates its own section and leaves the hand-written text alone.
"""
from __future__ import annotations

import datetime
import os
import platform
from importlib.metadata import version
from typing import Iterable, Sequence

from rich.console import Console
from rich.progress import Progress

from zoo import REPO

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """The line that says when and where numbers were measured."""
    return (f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores "
            f"({platform.machine()}, {platform.system()}), Python {platform.python_version()}, "
            f"numpy {version('numpy')}, onnxruntime {version('onnxruntime')}.")


def progress() -> Progress:
    """A progress bar on stderr, so stdout carries only the results."""
    return Progress(console=Console(stderr=True), transient=True)


def publish(name: str, body: str) -> None:
    """Print `body` and store it in the results file and the docs section called `name`."""
    print(body)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(body + "\n")
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n{section}\n"
    DOC.write_text(text)
