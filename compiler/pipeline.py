"""The optimization pipeline: the passes in order, levels, reports and DOT dumps.

    result = optimize([loss, probs], feeds=[x, labels], level="O2")
    print(result.report_text())
    result.program.graph        # the optimized graph
    result.program.fetches      # the fetches, mapped into it

Levels: O0 prunes only; O1 adds constant folding, algebraic simplification
and CSE; O2 adds expansion of composite ops and fusion (the default). Any
pass can be turned off by name (`disable=["fuse"]`). The user's graph is
never changed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from graphflow import errors
from graphflow.compiler.passes import cse, expand, fold, fuse, prune, simplify
from graphflow.compiler.passes.base import Pass, PassOptions
from graphflow.compiler.program import Program
from graphflow.compiler.verify import verify
from graphflow.graph import Graph, Operation, Tensor, get_default_graph

LEVELS = {"O0": 0, "O1": 1, "O2": 2}

PASSES: tuple[Pass, ...] = (
    Pass("prune", prune.run, 0, "keep only what the fetches need, given the feeds"),
    Pass("fold", fold.run, 1, "evaluate constant subgraphs"),
    Pass("simplify", simplify.run, 1, "algebraic identities that are exact under IEEE"),
    Pass("cse", cse.run, 1, "merge identical ops"),
    Pass("expand", expand.run, 2, "rewrite softmax, log_softmax, l2_loss, bias_add as simpler ops"),
    Pass("fold", fold.run, 2, "fold what expansion exposed"),
    Pass("cse", cse.run, 2, "merge what expansion duplicated"),
    Pass("fuse", fuse.run, 2, "merge elementwise ops, reductions and epilogues into fused nodes"),
)
PASS_NAMES = tuple(dict.fromkeys(p.name for p in PASSES))


@dataclasses.dataclass(frozen=True)
class PassReport:
    """What one pass did: node counts before and after, its changes, its time."""

    name: str
    nodes_before: int
    nodes_after: int
    changes: tuple[str, ...]
    seconds: float


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """The optimized program and the report of every pass that ran.

    Attributes:
      program: the optimized graph with the fetches and inputs mapped into it.
      report: one PassReport per pass, in order.
      source: the program before optimization (the user's graph).
    """

    program: Program
    report: tuple[PassReport, ...]
    source: Program

    @property
    def graph(self) -> Graph:
        return self.program.graph

    @property
    def fetches(self) -> tuple[Tensor | Operation, ...]:
        return self.program.fetches

    def fused_ops(self) -> list[Operation]:
        return [op for op in self.program.graph.get_operations() if op.type == "Fused"]

    def report_text(self) -> str:
        """The report as a table: one line per pass, then its changes indented."""
        lines = [f"{'pass':<10} {'nodes':>13} {'ms':>8}  changes"]
        for r in self.report:
            lines.append(
                f"{r.name:<10} {r.nodes_before:>5} -> {r.nodes_after:<5} {r.seconds * 1e3:8.2f}  "
                f"{len(r.changes)}"
            )
            lines.extend(f"{'':<10}   {c}" for c in r.changes[:20])
            if len(r.changes) > 20:
                lines.append(f"{'':<10}   ... and {len(r.changes) - 20} more")
        return "\n".join(lines)


def source_program(fetches: Any, feeds: Iterable[Any] = (), graph: Graph | None = None) -> Program:
    """The user's graph as a Program: flat fetches and fed tensors, resolved by name if needed."""
    items = fetches if isinstance(fetches, list | tuple) else [fetches]
    graph = graph or _graph_of(items) or get_default_graph()
    flat = tuple(graph.as_graph_element(f) for f in items)
    inputs: list[Tensor] = []
    for key in feeds:
        element = graph.as_graph_element(key)
        if isinstance(element, Operation):
            if len(element.outputs) != 1:
                raise errors.InvalidArgumentError(
                    f"cannot feed the op {element.name!r}: it has {len(element.outputs)} outputs"
                )
            element = element.outputs[0]
        if element not in inputs:
            inputs.append(element)
    return Program(graph, flat, tuple(inputs), {})


def _graph_of(items: Sequence[Any]) -> Graph | None:
    for item in items:
        if isinstance(item, Tensor | Operation):
            return item.graph
    return None


def optimize(
    fetches: Any,
    feeds: Iterable[Any] = (),
    level: str = "O2",
    disable: Iterable[str] = (),
    dump_dir: str | os.PathLike[str] | None = None,
    options: PassOptions | None = None,
    graph: Graph | None = None,
) -> OptimizeResult:
    """Optimizes the graph that computes `fetches` given the fed tensors `feeds`.

    Args:
      fetches: a Tensor, an Operation, a name, or a list/tuple of them.
      feeds: the tensors (or names) that will be fed: their producers are cut off.
      level: "O0" (prune), "O1" (+ fold, simplify, cse) or "O2" (+ expand, fuse).
      disable: names of passes to skip, e.g. ["fuse"]; "prune" always runs.
      dump_dir: if given, a Graphviz DOT file is written there before the
        first pass and after every pass (00-input.dot, 01-prune.dot, ...).
      options: knobs of the passes (PassOptions).
      graph: the graph, when fetches are given by name (default: the default graph).

    Returns:
      An OptimizeResult; the user's graph is not modified.

    Raises:
      InvalidArgumentError: an unknown level or pass name.
    """
    if level not in LEVELS:
        raise errors.InvalidArgumentError(
            f"unknown optimization level {level!r}; expected one of {', '.join(LEVELS)}"
        )
    disabled = set(disable)
    unknown = disabled - set(PASS_NAMES)
    if unknown:
        raise errors.InvalidArgumentError(
            f"unknown pass name(s) {sorted(unknown)} in disable; expected names among "
            f"{', '.join(PASS_NAMES)}"
        )
    options = options or PassOptions()
    source = source_program(fetches, feeds, graph)
    program = source
    reports: list[PassReport] = []
    _dump(dump_dir, 0, "input", program)
    for index, p in enumerate(PASSES, start=1):
        if p.level > LEVELS[level] or (p.name in disabled and p.name != "prune"):
            continue
        before = program.op_count()
        start = time.perf_counter()
        result = p.fn(program, options)
        program = result.program
        if result.changes and p.name != "prune":
            program = prune.run(program, options).program  # drop what the pass made dead
        verify(program, p.name)
        reports.append(
            PassReport(
                p.name, before, program.op_count(), result.changes, time.perf_counter() - start
            )
        )
        _dump(dump_dir, index, p.name, program)
    return OptimizeResult(program, tuple(reports), source)


def _dump(dump_dir: str | os.PathLike[str] | None, index: int, name: str, program: Program) -> None:
    if dump_dir is None:
        return
    from graphflow.compiler.dot import program_to_dot

    os.makedirs(dump_dir, exist_ok=True)
    path = os.path.join(dump_dir, f"{index:02d}-{name}.dot")
    with open(path, "w", encoding="utf-8") as f:
        f.write(program_to_dot(program, title=f"after {name}" if index else "as built"))
