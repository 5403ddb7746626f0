"""The `graphflow` command line: subcommands that sit on top of the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _version(args: argparse.Namespace) -> int:
    import llvmlite
    import networkx
    import numpy

    import graphflow

    print(f"graphflow {graphflow.__version__}")
    print(
        f"numpy {numpy.__version__}, llvmlite {llvmlite.__version__}, "
        f"networkx {networkx.__version__}, Python {sys.version.split()[0]}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphflow",
        description="graphflow: a static dataflow-graph compiler and session runtime.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = commands.add_parser(
        "version", help="print the versions of graphflow and its libraries"
    )
    version.set_defaults(run=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graphflow` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
