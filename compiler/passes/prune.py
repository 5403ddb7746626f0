"""prune: keep only the ops the fetches need, given the fed tensors.

A fed tensor cuts off its producer (it becomes a Placeholder of the new
graph). Kept are: every fetched op, every op a kept op reads (inputs, and
the variables named by reference inputs) or must run after (control
inputs), so an assign a fetch depends on through a control dependency stays.
"""

from __future__ import annotations

import networkx as nx

from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.program import GraphBuilder, Program
from graphflow.graph import Operation, Tensor


def dependency_graph(program: Program) -> nx.DiGraph:
    """Ops as nodes; an edge producer -> consumer for each input not fed, and each control input."""
    fed = set(program.inputs)
    g = nx.DiGraph()
    for op in program.graph.get_operations():
        g.add_node(op)
        for t in op.inputs:
            if t not in fed:
                g.add_edge(t.op, op)
        for c in op.control_inputs:
            g.add_edge(c, op)
    return g


def needed_ops(program: Program) -> set[Operation]:
    deps = dependency_graph(program)
    roots = {f.op if isinstance(f, Tensor) else f for f in program.fetches}
    roots = {r for r in roots if not (isinstance(r, Operation) and _only_fed(r, program))}
    needed: set[Operation] = set()
    for root in roots:
        if root not in needed:
            needed.add(root)
            needed |= nx.ancestors(deps, root)
    return needed


def _only_fed(op: Operation, program: Program) -> bool:
    """True when every fetch of `op`'s outputs is fed, so `op` itself need not run."""
    fed = set(program.inputs)
    fetched = [f for f in program.fetches if isinstance(f, Tensor) and f.op is op]
    return (
        bool(fetched)
        and all(f in fed for f in fetched)
        and op not in [f for f in program.fetches if isinstance(f, Operation)]
    )


def run(program: Program, options: PassOptions) -> PassResult:
    needed = needed_ops(program)
    builder = GraphBuilder(program)
    for op in program.graph.get_operations():
        if op in needed and not builder.handled(op):
            builder.copy(op)
    result = builder.finish()
    dropped = program.op_count() - result.op_count()
    changes = [f"removed {dropped} op(s) the fetches do not need"] if dropped > 0 else []
    return PassResult(result, tuple(changes))
