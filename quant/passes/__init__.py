"""Prepare's rewrite passes, one per module, each a `match(view, node)` / `transform(view, node)`
pair (see `quant.passes.base`). The flow that orders them lives in `quant.prepare`."""
