"""IR validity after every pass: a pass bug is caught where it happens, not at run time.

Checks that every input and control input of an op belongs to the program's
graph and comes earlier in creation order, that every fetch and input is in
the graph, and that each op's recorded output types agree with what its
rules infer from its inputs now.
"""

from __future__ import annotations

from graphflow import errors
from graphflow.compiler.program import Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import get_op_def, infer


def verify(program: Program, after: str) -> None:
    """Raises InternalError naming the pass `after` which the program is invalid."""
    graph = program.graph
    position = {op: i for i, op in enumerate(graph.get_operations())}

    def fail(message: str) -> errors.InternalError:
        return errors.InternalError(f"invalid graph after pass '{after}': {message}")

    for op, index in position.items():
        for t in op.inputs:
            if t.op not in position or position[t.op] >= index:
                raise fail(f"{op.type} '{op.name}' reads {t.name}, which is not built before it")
        for c in op.control_inputs:
            if c not in position or position[c] >= index:
                raise fail(f"{op.type} '{op.name}' has a control input outside the graph")
        op_def = get_op_def(op.type)
        specs = infer(
            op_def,
            [t.dtype for t in op.inputs],
            [t.shape for t in op.inputs],
            op.attrs,
            op.name,
            op.location,
        )
        for t, (dtype, shape) in zip(op.outputs, specs):
            if t.dtype != dtype or not t.shape.is_compatible_with(shape):
                raise fail(
                    f"{op.type} '{op.name}' output {t.value_index} is {t.dtype.name} {t.shape}, "
                    f"but its inputs give {dtype.name} {shape}"
                )
    for f in (*program.fetches, *program.inputs):
        op = f.op if isinstance(f, Tensor) else f
        if not isinstance(op, Operation) or op not in position:
            raise fail(f"the fetch or input {f!r} is not in the graph")
