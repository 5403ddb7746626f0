"""fold: evaluate subgraphs whose inputs are all constants, with the reference kernels.

An op folds when every input is a constant (after folding its producers),
it has no control inputs, and it is neither stateful, random, nor a source
other than Const. Shape, Size and Rank fold whenever the static shape of
their input is fully known.

The result replaces the op as one Const named after it, so names in the
optimized graph still say where a value came from. A result larger than
`fold_size_cap` bytes stays symbolic when it is cheaper to recompute than to
store: when it is bigger than all of the op's inputs together (a fill, a
range, a broadcast, a tile).
"""

from __future__ import annotations

import numpy as np

from graphflow import errors
from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.program import GraphBuilder, Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import CONTROL, RANDOM, SOURCE, STATE, get_op_def

_NEVER_FOLD_KINDS = (SOURCE, STATE, RANDOM, CONTROL)
_SHAPE_OPS = ("Shape", "Size", "Rank")


def const_value(t: Tensor) -> np.ndarray | None:
    """The value of a tensor produced by a Const op, else None."""
    if t.op.type == "Const":
        return t.op.attrs["value"]
    return None


def _static_shape_value(op: Operation) -> np.ndarray | None:
    shape = op.inputs[0].shape
    if op.type == "Rank":
        return None if shape.rank is None else np.asarray(shape.rank, np.int32)
    if not shape.is_fully_defined:
        return None
    out_dtype = op.outputs[0].dtype.np
    if op.type == "Shape":
        return np.asarray(shape.as_list(), out_dtype)
    return np.asarray(shape.num_elements(), out_dtype)


def _evaluate(op: Operation, inputs: list[np.ndarray]) -> list[np.ndarray]:
    op_def = get_op_def(op.type)
    with np.errstate(all="ignore"):
        result = op_def.reference(*inputs, **op.attrs)  # type: ignore[misc]
    outputs = list(result) if isinstance(result, tuple) else [result]
    return [np.asarray(v) for v in outputs]


def run(program: Program, options: PassOptions) -> PassResult:
    builder = GraphBuilder(program)
    changes: list[str] = []
    for op in program.graph.get_operations():
        if builder.handled(op):
            continue
        folded = _try_fold(op, builder, options)
        if folded is None:
            builder.copy(op)
            continue
        for i, (t, value) in enumerate(zip(op.outputs, folded)):
            name = op.name if len(op.outputs) == 1 else f"{op.name}/output_{i}"
            const = builder.graph._create_op(
                "Const",
                [],
                {"value": _frozen(value), "dtype": t.dtype},
                [(t.dtype, t.shape.merge_with(value.shape))],
                name,
                op.location,
                unique=False,
            )
            builder.origin[const] = program.user_op(op)
            builder.set(t, const.outputs[0])
        changes.append(
            f"folded {op.type} '{op.name}' to a constant of shape "
            f"{tuple(folded[0].shape) if folded else ()}"
        )
    return PassResult(builder.finish(), tuple(changes))


def _frozen(value: np.ndarray) -> np.ndarray:
    value = np.array(value, copy=True, order="C")
    value.flags.writeable = False
    return value


def _try_fold(
    op: Operation, builder: GraphBuilder, options: PassOptions
) -> list[np.ndarray] | None:
    op_def = get_op_def(op.type)
    if op_def.kind in _NEVER_FOLD_KINDS or op.control_inputs or not op.outputs:
        return None
    if op.type in _SHAPE_OPS:
        value = _static_shape_value(op)
        return None if value is None else [value]
    inputs = [const_value(builder.get(t)) for t in op.inputs]
    if any(v is None for v in inputs):
        return None
    try:
        outputs = _evaluate(op, inputs)  # type: ignore[arg-type]
    except errors.GraphflowError:
        return None  # e.g. an out-of-range gather index: let it fail at run time, with context
    except Exception:  # noqa: BLE001 - same: a kernel that fails on these constants
        return None
    size = sum(v.nbytes for v in outputs)
    if size > options.fold_size_cap and size > sum(v.nbytes for v in inputs):  # type: ignore[union-attr]
        return None
    for t, v in zip(op.outputs, outputs):
        if v.dtype != t.dtype.np:
            raise errors.InternalError(f"fold: {op.type} gave {v.dtype}, expected {t.dtype}")
    return outputs
