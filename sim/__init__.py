"""Simulation (coming): cocotb benches that replay the golden model's integer vectors
(`intforge run`) against the generated RTL and check every output bit."""
