"""Stage 2, prepare: rewrite a verified float graph into the small vocabulary the quantizer
handles, without changing what it computes.

The flow is an explicit, ordered list of stages; each stage is a list of passes
(`quant.passes`, one rewrite per module) run in order and repeated until none applies.
Every pass is exact on float values up to float rounding (docs/prepare.md says why for each),
so the prepared graph is checked against onnxruntime on the original model.
"""
from __future__ import annotations

from typing import Sequence

from quant.graph import Graph
from quant.passes import (batchnorm_to_affine, canonical_gemm, canonical_reshape,
                          clamp_before_maxpool, eliminate_identity, fold_batchnorm, fold_bias_add,
                          fold_constants, fold_pad, fold_shape, fuse_activation, matmul_to_gemm,
                          merge_affine, merge_reshapes, reducemean_to_gap, remove_neutral,
                          remove_noop_reshape, sub_div_to_add_mul)
from quant.passes.base import Pass, View

SIMPLIFY: tuple[Pass, ...] = (
    fold_constants, fold_shape, eliminate_identity,
    canonical_reshape, merge_reshapes, remove_noop_reshape,
    canonical_gemm, matmul_to_gemm, fold_batchnorm, batchnorm_to_affine,
    sub_div_to_add_mul, remove_neutral, merge_affine, fold_bias_add,
    fold_pad, reducemean_to_gap,
)
"""Canonical forms: constants folded, layers absorb BN/bias/pads, shapes become Reshapes."""

FUSE: tuple[Pass, ...] = (fuse_activation, clamp_before_maxpool)
"""Clamps fused into their producers; last, so no structural pass has to look through them."""

FLOW: tuple[tuple[Pass, ...], ...] = (SIMPLIFY, FUSE)

MAX_REWRITES_PER_NODE = 50
"""A bound on rewrites (per node of the input graph) that only a looping pass can reach."""


def prepare(graph: Graph) -> Graph:
    """An equivalent, quantization-friendly copy of the verified float `graph`."""
    return run_flow(graph, FLOW)


def run_flow(graph: Graph, flow: Sequence[Sequence[Pass]]) -> Graph:
    """A copy of `graph` after each stage of `flow` has been run to a fixed point; dead nodes
    and constants removed, nodes in topological order."""
    g = graph.copy()
    g.remove_unused()
    g.toposort()
    view = View(g)
    budget = MAX_REWRITES_PER_NODE * (len(g.nodes) + 1)
    for stage in flow:
        while rewrites := sum(_exhaust(view, rewrite, budget) for rewrite in stage):
            budget -= rewrites
    return g


def _exhaust(view: View, rewrite: Pass, budget: int) -> int:
    """Apply `rewrite` until it matches nowhere; the number of rewrites. Raises (a bug in a
    pass, not in the model) when the count exceeds `budget`."""
    count = 0
    while (node := next((n for n in view.graph.nodes if rewrite.match(view, n)), None)) is not None:
        rewrite.transform(view, node)
        view.graph.remove_unused()
        view.graph.toposort()
        view.changed()
        count += 1
        if count > budget:
            raise RuntimeError(f"prepare: pass {getattr(rewrite, '__name__', rewrite)} does not converge")
    return count
