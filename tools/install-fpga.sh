#!/usr/bin/env bash
# Install the Debian tools that amaranth-boards' ECP5 builds call or look for: dfu-suffix
# (from dfu-util; the OrangeCrab build stamps its bitstream with it) and openFPGALoader
# (the ULX3S and OrangeCrab programmers; amaranth checks for it even when only building).
# yosys and nextpnr come from PyPI (yowasp-*), not from here. Idempotent; a no-op when done.
# Usage: tools/install-fpga.sh   (as root)
set -euo pipefail

missing=()
command -v dfu-suffix >/dev/null || missing+=(dfu-util)
command -v openFPGALoader >/dev/null || missing+=(openfpgaloader)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" \
        || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
