"""Layer engines: one integer-graph operator each, built from the blocks in `hw/`."""
