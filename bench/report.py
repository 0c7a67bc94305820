"""Where benchmark results go: stdout, `bench/results/<name>.md`, and the section of
docs/benchmarks.md between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->` (and
of README.md, where it has those markers), so that every script regenerates its own sections
and leaves the hand-written text alone.
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
README = REPO / "README.md"


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
    """Print `body` and store it in the results file, the docs section called `name`, and the
    README's section of that name if it has one."""
    print(body)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(body + "\n")
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = f"{start}\n{body}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(_with_section(text, start, end, section))
    readme = README.read_text()
    if start in readme and end in readme:
        README.write_text(_with_section(readme, start, end, section))


def _with_section(text: str, start: str, end: str, section: str) -> str:
    """`text` with the part from `start` to `end` replaced by `section` (appended if absent)."""
    if start in text and end in text:
        return text[:text.index(start)] + section + text[text.index(end) + len(end):]
    return text.rstrip("\n") + f"\n\n{section}\n"
