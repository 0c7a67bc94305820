"""Entry point: parse the command line, run one command, turn user errors into exit code 2.

Exit codes: 0 success; 2 bad input (usage error, or any `quant.errors.IntforgeError`, or a
file that cannot be read or written), reported as one line `intforge: error: <message>` on
stderr without a traceback. Anything else escaping is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from intforge_cli.commands import (board, check, compare, demo, evaluate, export_onnx, hw,
                                   inspect, quantize, run, sim)
from quant.errors import IntforgeError

EXIT_USAGE = 2
COMMANDS = (quantize, evaluate, run, compare, inspect, export_onnx, check, hw, sim, board,
            demo)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.command(args)
    except IntforgeError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.filename}: {e.strerror}" if e.filename else str(e))
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="intforge", description="Float ONNX models to fully integer models.")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error format (subcommand parsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        sys.exit(_fail(f"{message} (see '{self.prog} --help')"))


def _fail(message: str) -> int:
    print(f"intforge: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
