"""expand: rewrite structured ops that are compositions of simpler ones into those ops.

Softmax, LogSoftmax, L2Loss and BiasAdd become the reductions and
elementwise ops they are made of, so that fusion can merge them with their
neighbours (a scaled loss, a softmax of an elementwise expression). A
softmax of anything else stays one op: the backend's row kernel beats the
expanded form (see ROW_KERNELS). Each expansion
computes exactly what the op's reference kernel computes, in the same order
of operations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.program import GraphBuilder, Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import ELEMENTWISE, get_op_def

Expansion = Callable[[Operation, list[Tensor], GraphBuilder], list[Tensor]]


def _emit(
    builder: GraphBuilder,
    op: Operation,
    op_type: str,
    inputs: list[Tensor],
    attrs: dict | None = None,
) -> Tensor:
    return builder.emit(op_type, inputs, attrs, like=op).outputs[0]


def _const(builder: GraphBuilder, op: Operation, value: float, like: Tensor) -> Tensor:
    array = np.asarray(value, dtype=like.dtype.np)
    array.flags.writeable = False
    return builder.emit("Const", [], {"value": array, "dtype": like.dtype}, like=op).outputs[0]


def _shifted(op: Operation, x: Tensor, builder: GraphBuilder) -> tuple[Tensor, tuple[int, ...]]:
    axis = op.attrs["axis"]
    axes = (axis,) if axis >= 0 else (x.shape.rank + axis,)
    peak = _emit(builder, op, "Max", [x], {"axis": axes, "keepdims": True})
    return _emit(builder, op, "Sub", [x, peak]), axes


def softmax(op: Operation, inputs: list[Tensor], builder: GraphBuilder) -> list[Tensor]:
    # exp(x - max) / sum(exp(x - max)), as the reference computes it.
    shifted, axes = _shifted(op, inputs[0], builder)
    e = _emit(builder, op, "Exp", [shifted])
    total = _emit(builder, op, "Sum", [e], {"axis": axes, "keepdims": True})
    return [_emit(builder, op, "RealDiv", [e, total])]


def log_softmax(op: Operation, inputs: list[Tensor], builder: GraphBuilder) -> list[Tensor]:
    # (x - max) - log(sum(exp(x - max))).
    shifted, axes = _shifted(op, inputs[0], builder)
    e = _emit(builder, op, "Exp", [shifted])
    total = _emit(builder, op, "Sum", [e], {"axis": axes, "keepdims": True})
    return [_emit(builder, op, "Sub", [shifted, _emit(builder, op, "Log", [total])])]


def l2_loss(op: Operation, inputs: list[Tensor], builder: GraphBuilder) -> list[Tensor]:
    # sum(x * x) / 2; dividing by 2 and multiplying by 0.5 are both exact.
    (x,) = inputs
    total = _emit(builder, op, "Sum", [_emit(builder, op, "Square", [x])], dict(op.attrs))
    return [_emit(builder, op, "Mul", [total, _const(builder, op, 0.5, x)])]


def bias_add(op: Operation, inputs: list[Tensor], builder: GraphBuilder) -> list[Tensor]:
    # A channels-last bias add is an add broadcasting the bias over the last axis.
    return [_emit(builder, op, "Add", list(inputs))]


EXPANSIONS: dict[str, Expansion] = {
    "Softmax": softmax,
    "LogSoftmax": log_softmax,
    "L2Loss": l2_loss,
    "BiasAdd": bias_add,
}


# Ops with a row kernel in the backend: it reads each row from memory once
# and does the max, sum and output passes in L1, where the expanded form
# reads the input three times. They are expanded only when an elementwise
# producer could fuse into them (softmax(relu(x) * 3)), saving a pass.
ROW_KERNELS = frozenset({"Softmax", "LogSoftmax"})


def _fusable_producer(t: Tensor) -> bool:
    return get_op_def(t.op.type).kind == ELEMENTWISE and t.op.type not in ("Const", "Fill")


def run(program: Program, options: PassOptions) -> PassResult:
    builder = GraphBuilder(program)
    changes: list[str] = []
    for op in program.graph.get_operations():
        if builder.handled(op):
            continue
        expansion = EXPANSIONS.get(op.type)
        inputs = [builder.get(t) for t in op.inputs]
        if (
            expansion is None
            or any(t.shape.rank is None for t in inputs)
            or (op.type in ROW_KERNELS and not _fusable_producer(inputs[0]))
        ):
            builder.copy(op)
            continue
        for old, new in zip(op.outputs, expansion(op, inputs, builder)):
            builder.set(old, new)
        changes.append(f"expanded {op.type} '{op.name}'")
    return PassResult(builder.finish(), tuple(changes))
