"""Boards (coming): one module per FPGA board family, building the generated design with
yosys and nextpnr and reporting resources and timing."""
