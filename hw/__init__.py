"""Hardware (coming): the integer graph lowered to Amaranth components (MAC arrays,
requantizers, one block per layer) and emitted as Verilog, bit-exact to `quant.evaluate`."""
