"""The `graphflow` command line: subcommands that sit on top of the library.

    graphflow version | info | demo | bench | dot | cache clear

Exit status: 0 success; 1 the command ran and failed (the demo's two modes
disagree, a file cannot be written); 2 the command line cannot run as given
(a bad option, an unknown workload, a missing optional dependency). Errors
are one line on stderr, never a traceback. docs/cli.md documents each
subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import traceback
import types
from collections.abc import Sequence
from typing import Any

from graphflow.argparsing import OneLineErrorParser

_INSTALL_GRAPHVIZ = "install Graphviz (Debian: apt-get install graphviz) to render SVG"


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


# -- graphflow dot -------------------------------------------------------------------------
class _DotError(Exception):
    """A user error of `graphflow dot`: printed as one line, exit status `status`."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _user_frame(error: BaseException) -> str:
    """Where in the user's code `error` happened, as " (at file:line)"; skips graphflow's frames."""
    from graphflow.source import _is_internal

    if isinstance(error, SyntaxError) and error.filename:
        return f" (at {error.filename}:{error.lineno})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _is_internal(f.filename)]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _load_module(spec: str) -> types.ModuleType:
    """Imports MODULE: a path to a .py file, or a dotted module importable from the cwd."""
    looks_like_path = spec.endswith(".py") or os.sep in spec or "/" in spec
    if looks_like_path:
        path = pathlib.Path(spec).resolve()
        if not path.is_file():
            raise _DotError(f"cannot import {spec!r}: no such file")
        name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else None
        name = name or "_graphflow_dot_" + "".join(c if c.isalnum() else "_" for c in path.stem)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise _DotError(f"cannot import {spec!r}: not a Python source file")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 -- any failure of user code is one line, not a traceback
            del sys.modules[name]
            where = _user_frame(e)
            raise _DotError(
                f"importing {spec!r} failed: {type(e).__name__}: {_one_line(e)}{where}"
            ) from None
        return module
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name is not None and (spec == e.name or spec.startswith(e.name + ".")):
            raise _DotError(
                f"cannot import module {spec!r}: no module named {e.name!r} in the current "
                "directory or on sys.path"
            ) from None
        raise _DotError(f"importing module {spec!r} failed: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 -- as above
        raise _DotError(
            f"importing module {spec!r} failed: {type(e).__name__}: {_one_line(e)}{_user_frame(e)}"
        ) from None


def _fetch_like(value: Any) -> bool:
    import graphflow as gf

    return isinstance(value, gf.Tensor | gf.Operation | str)


def _split_result(result: Any, target: str) -> tuple[Any, list[Any]]:
    """(fetches, feeds) from what FUNCTION returned: fetches, or (fetches, feeds)."""
    expected = (
        "expected fetches (a Tensor, an Operation, or a list/tuple of them), optionally with "
        "feeds as (fetches, [fed tensors])"
    )
    fetches, feeds = result, []
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[1], list | tuple | dict)
        and (_fetch_like(result[0]) or isinstance(result[0], list | tuple))
    ):
        fetches, feeds = result[0], list(result[1])
    items = list(fetches) if isinstance(fetches, list | tuple) else [fetches]
    if not items:
        raise _DotError(f"{target} returned no fetches; {expected}")
    for item in [*items, *feeds]:
        if not _fetch_like(item):
            what = "None" if item is None else f"a {type(item).__name__}"
            raise _DotError(f"{target} returned {what}; {expected}")
    return fetches, feeds


def _svg_path(output: str | None) -> pathlib.Path:
    if output is None:
        raise _DotError("--svg needs -o FILE: the DOT goes to FILE and the SVG next to it")
    path = pathlib.Path(output)
    if path.suffix == ".svg":
        raise _DotError(f"with --svg, -o names the DOT file (e.g. graph.dot); got {output!r}")
    return path.with_suffix(".svg")


def _render_svg(dot_file: pathlib.Path, svg_file: pathlib.Path) -> None:
    binary = shutil.which("dot")
    if binary is None:
        raise _DotError(f"the `dot` program was not found: {_INSTALL_GRAPHVIZ}", status=1)
    result = subprocess.run(
        [binary, "-Tsvg", str(dot_file), "-o", str(svg_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise _DotError(f"dot failed to render {dot_file}: {_one_line(result.stderr)}", status=1)


def _dot_text(args: argparse.Namespace) -> str:
    import graphflow as gf
    from graphflow import errors

    module_name, colon, function_name = args.target.rpartition(":")
    if not colon or not module_name or not function_name:
        raise _DotError(f"expected MODULE:FUNCTION, got {args.target!r}")
    module = _load_module(module_name)
    function = getattr(module, function_name, None)
    if function is None:
        raise _DotError(f"module {module_name!r} has no attribute {function_name!r}")
    if not callable(function):
        raise _DotError(
            f"{args.target} is a {type(function).__name__}, not a function that builds a graph"
        )
    graph = gf.Graph()
    with graph.as_default():
        try:
            result = function()
        except errors.GraphflowError as e:
            raise _DotError(
                f"graphflow error while building the graph in {args.target}: "
                f"{type(e).__name__}: {_one_line(e)}"
            ) from None
        except Exception as e:  # noqa: BLE001 -- as above
            raise _DotError(
                f"{args.target} raised {type(e).__name__}: {_one_line(e)}{_user_frame(e)}"
            ) from None
        fetches, feeds = _split_result(result, args.target)
        level = args.level or "O2"
        try:
            return gf.to_dot(
                fetches, feeds, optimized=args.optimized or args.level is not None, level=level
            )
        except errors.GraphflowError as e:
            raise _DotError(f"cannot draw {args.target}: {_one_line(e)}") from None


def _dot(args: argparse.Namespace) -> int:
    try:
        svg = _svg_path(args.output) if args.svg else None
        text = _dot_text(args)
        if args.output is None:
            sys.stdout.write(text)
            return 0
        path = pathlib.Path(args.output)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise _DotError(f"cannot write {args.output}: {e.strerror or e}", status=1) from None
        if svg is not None:
            _render_svg(path, svg)
        return 0
    except _DotError as e:
        print(f"graphflow dot: error: {e}", file=sys.stderr)
        return e.status


# -- graphflow info, cache ----------------------------------------------------------------
def _info(args: argparse.Namespace) -> int:
    from graphflow.info import describe

    rows = describe()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name + ':':<{width + 1}} {value}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from graphflow.info import cache_summary, clear_cache

    if args.action is None:
        print(f"JIT cache: {cache_summary().text()}")
        print("clear it with: graphflow cache clear")
        return 0
    try:
        removed = clear_cache()
    except OSError as e:
        print(f"graphflow cache clear: error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 1
    if removed.entries == 0 and removed.bytes == 0:
        print(f"nothing to remove: the JIT cache in {removed.folder} is empty")
    else:
        print(
            f"removed {removed.entries} compiled entries ({removed.bytes} bytes) "
            f"from the JIT cache in {removed.folder}"
        )
    return 0


# -- graphflow demo, bench -----------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from graphflow.demo import DemoError, run_demo

    try:
        return run_demo(args.out, batch=args.batch)
    except DemoError as e:
        print(f"graphflow demo: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return value


def _bench(args: argparse.Namespace) -> int:
    from graphflow.benchmarks import run

    return run.main(
        args.bench_argv, prog="graphflow bench", reexecute_as=("-m", "graphflow.cli", "bench")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="graphflow",
        description="graphflow: a static dataflow-graph compiler and session runtime.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = commands.add_parser(
        "version", help="print the versions of graphflow and its libraries"
    )
    version.set_defaults(run=_version)
    info = commands.add_parser(
        "info",
        help="print versions, LLVM, the CPU and its features, and the JIT cache",
        description="Prints graphflow's, Python's and the libraries' versions, the LLVM "
        "version, the CPU and the features machine code is generated for, and the JIT "
        "disk cache's folder, size and entry count.",
    )
    info.set_defaults(run=_info)
    cache = commands.add_parser(
        "cache",
        help="show or clear the JIT disk cache",
        description="Without an action: where the JIT disk cache is and its size. "
        "`clear` removes its compiled entries ($GRAPHFLOW_CACHE_DIR, else "
        "~/.cache/graphflow); they are rebuilt when needed.",
    )
    cache.add_argument("action", nargs="?", choices=["clear"], help="clear: remove every entry")
    cache.set_defaults(run=_cache)
    demo = commands.add_parser(
        "demo",
        help="build a classifier, show the optimizer at work, run it compiled and interpreted",
        description="Builds an MLP classifier (layernorm, GELU, softmax; weights from a "
        "seed), prints what each optimization pass did, writes the graph as built and as "
        "optimized as DOT (and SVG with Graphviz), runs it compiled and interpreted, checks "
        "that they agree, and prints a table of times. Exit status 1 if they disagree.",
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="graphflow-demo",
        help="the folder for the DOT/SVG files (default: ./graphflow-demo)",
    )
    demo.add_argument("--batch", type=_positive, default=256, help="rows of input (default 256)")
    demo.set_defaults(run=_demo)
    bench = commands.add_parser(
        "bench",
        help="time the workloads of WORKLOADS.md against NumPy, the peers and the machine",
        description="Times the benchmark workloads compiled, interpreted and in NumPy (and, "
        "with --peers, in every installed peer library), with the machine's limits. The "
        "table goes to stdout, progress to stderr.",
    )
    from graphflow.benchmarks.run import add_arguments

    add_arguments(bench)
    bench.set_defaults(run=_bench)
    dot = commands.add_parser(
        "dot",
        help="write a graph as Graphviz DOT (optionally optimized, optionally as SVG)",
        description="Builds a graph by calling MODULE:FUNCTION inside a fresh graph and "
        "writes it as Graphviz DOT. FUNCTION takes no arguments and returns the fetches, "
        "or (fetches, feeds).",
    )
    dot.add_argument(
        "target",
        metavar="MODULE:FUNCTION",
        help="a dotted module importable from the current directory, or a path to a .py "
        "file, and the function in it that builds the graph",
    )
    dot.add_argument("--optimized", action="store_true", help="draw the graph after optimization")
    dot.add_argument(
        "--level",
        choices=["O0", "O1", "O2"],
        default=None,
        help="optimization level (implies --optimized; default O2)",
    )
    dot.add_argument("-o", "--output", metavar="FILE", help="write the DOT to FILE")
    dot.add_argument(
        "--svg",
        action="store_true",
        help="also render FILE's SVG next to it with Graphviz's `dot` (needs -o)",
    )
    dot.set_defaults(run=_dot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graphflow` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        args.bench_argv = argv[argv.index("bench") + 1 :]
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
