"""The `intforge` command: a thin front over `quant` (and later `hw`, `sim`, `boards`).

Commands parse arguments, call the library, and print results; the analyses they print
(accuracy, layer errors, per-layer statistics, reports) live in small modules beside them.
"""
