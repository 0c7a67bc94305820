"""A comparison report: PNG plots and an index.md page holding the table and linking them.

    DIR/sqnr.png            per-layer SQNR bar chart
    DIR/ranges/NN_name.png  per layer: histogram of the float values, with the real range
                            of the integer grid (scale * (qmin - z), scale * (qmax - z)) marked
    DIR/index.md            summary, per-layer table, links

Plots use matplotlib's object API on the Agg canvas (no pyplot state, no display needed);
every file is written atomically.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from intforge_cli.comparison import Comparison, LayerError
from intforge_cli.output import percent
from quant.atomic import atomic_write


def write_report(comparison: Comparison, out_dir: str | Path, title: str) -> Path:
    """Write the report into `out_dir` (created if needed); returns the index page."""
    out = Path(out_dir)
    (out / "ranges").mkdir(parents=True, exist_ok=True)
    _save(_sqnr_chart(comparison.layers), out / "sqnr.png")
    plots = []
    for i, layer in enumerate(comparison.layers):
        plots.append(Path("ranges") / f"{i:02d}_{_slug(layer.name)}.png")
        _save(_range_histogram(layer), out / plots[-1])
    index = out / "index.md"
    with atomic_write(index, "w") as f:
        f.write(_index(comparison, plots, title))
    return index


def _sqnr_chart(layers: list[LayerError]) -> Figure:
    finite = [l.sqnr_db for l in layers if math.isfinite(l.sqnr_db)]
    cap = max(finite, default=0.0) + 10.0  # where an exact (infinite SQNR) layer's bar ends
    shown = [min(max(l.sqnr_db, 0.0), cap) for l in layers]
    fig = Figure(figsize=(8, 1.5 + 0.3 * len(layers)))
    ax = fig.add_subplot()
    ax.barh(range(len(layers)), shown, color="tab:blue")
    for y, (value, layer) in enumerate(zip(shown, layers)):
        text = f"{layer.sqnr_db:.1f}" if math.isfinite(layer.sqnr_db) else "exact" if layer.sqnr_db > 0 else "-inf"
        ax.text(value, y, f" {text}", va="center", fontsize=8)
    ax.set_yticks(range(len(layers)), [f"{l.name} ({l.op})" for l in layers], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(shown, default=0.0) * 1.15 + 1.0)  # room for the value labels
    ax.set_xlabel("SQNR (dB), float vs dequantized integer")
    ax.set_title("Per-layer SQNR")
    fig.tight_layout()
    return fig


def _range_histogram(layer: LayerError) -> Figure:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.hist(layer.float_values.ravel(), bins=100, color="tab:gray")
    for edge in layer.grid:
        ax.axvline(edge, color="tab:red", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel(f"float value; red: integer grid [{layer.grid[0]:.4g}, {layer.grid[1]:.4g}]")
    ax.set_ylabel("count")
    ax.set_title(f"{layer.name} ({layer.op})", fontsize=9)
    fig.tight_layout()
    return fig


def _index(comparison: Comparison, plots: list[Path], title: str) -> str:
    lines = [f"# {title}", "",
             f"- samples: {comparison.n}",
             f"- float accuracy: {percent(comparison.float_accuracy)}",
             f"- integer accuracy: {percent(comparison.int_accuracy)}",
             f"- argmax agreement: {percent(comparison.agreement)}", "",
             "![per-layer SQNR](sqnr.png)", "",
             "| # | tensor | op | SQNR (dB) | max abs error | float range vs integer grid |",
             "|---|---|---|---|---|---|"]
    for i, (layer, plot) in enumerate(zip(comparison.layers, plots)):
        sqnr = f"{layer.sqnr_db:.2f}" if math.isfinite(layer.sqnr_db) else str(layer.sqnr_db)
        lines.append(f"| {i} | `{layer.name}` | {layer.op} | {sqnr} | {layer.max_abs_error:.4g} "
                     f"| [histogram]({plot.as_posix()}) |")
    return "\n".join(lines) + "\n"


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, metadata={"Software": None})


def _slug(name: str) -> str:
    """A tensor name as a file name: '/conv1/Conv_output_0' -> 'conv1_Conv_output_0'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:60] or "tensor"
