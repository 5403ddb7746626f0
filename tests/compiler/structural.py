"""Structural comparison of programs, for before/expected pass tests (as TVM's tests do).

Two programs are structurally equal when, walking back from their fetches,
they have the same ops (type, attributes, fused bodies) wired the same way;
names do not matter.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import graphflow as gf
from graphflow.compiler.passes.cse import attr_key
from graphflow.compiler.pipeline import source_program
from graphflow.compiler.program import Program
from graphflow.ops.fused_ops import FusedBody


def _attr(value: Any) -> Hashable:
    if isinstance(value, FusedBody):
        return (
            "body",
            value.pattern,
            tuple(
                (n.op_type, tuple(sorted((k, _attr(v)) for k, v in n.attrs.items())), n.inputs)
                for n in value.nodes
            ),
            value.outputs,
        )
    return attr_key(value)


def canonical(program: Program) -> tuple[Any, ...]:
    """The program's fetch-reachable DAG as nested tuples, independent of names."""
    ids: dict[gf.Operation, int] = {}
    rows: list[Any] = []

    def visit(op: gf.Operation) -> int:
        if op in ids:
            return ids[op]
        inputs = tuple((visit(t.op), t.value_index) for t in op.inputs)
        controls = tuple(sorted(visit(c) for c in op.control_inputs))
        attrs = tuple(sorted((k, _attr(v)) for k, v in op.attrs.items()))
        if op.type == "Placeholder" and op.outputs[0] in program.inputs:
            attrs = (("input", program.inputs.index(op.outputs[0])),)
        ids[op] = len(rows)
        rows.append((op.type, attrs, inputs, controls))
        return ids[op]

    fetches = tuple(
        (visit(f.op), f.value_index) if isinstance(f, gf.Tensor) else (visit(f), -1)
        for f in program.fetches
    )
    return tuple(rows), fetches


def assert_same_structure(got: Program, expected: Program) -> None:
    a, b = canonical(got), canonical(expected)
    assert a == b, f"structures differ:\n got      {a}\n expected {b}"


def program_of(fetches: Any, feeds: Any = ()) -> Program:
    return source_program(fetches, feeds)
