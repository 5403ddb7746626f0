"""The reference interpreter: runs a pruned op list with each op's NumPy kernel.

Ops run in creation order (a topological order, since graphs are
append-only), and each value is freed after its last use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from graphflow import errors
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import ExecutionContext, OpDef, get_op_def


@dataclass(frozen=True)
class Step:
    op: Operation
    op_def: OpDef
    inputs: tuple[Tensor | None, ...]  # None for a reference input (not read)
    release: tuple[Tensor, ...]  # values no later step needs


@dataclass(frozen=True)
class Plan:
    """The ops to run, in order, for some fetches given some fed tensors."""

    steps: tuple[Step, ...]
    fetches: tuple[Tensor | Operation, ...]


def needed_ops(targets: Iterable[Tensor | Operation], fed: frozenset[Tensor]) -> list[Operation]:
    """The ops that must run to compute `targets`, in creation order.

    A fed tensor cuts off its producer; reference inputs (the variable of
    an assign) do not make their producer run; control inputs do.
    """
    seen: set[Operation] = set()
    stack: list[Operation] = []

    def want_tensor(t: Tensor) -> None:
        if t not in fed and t.op not in seen:
            seen.add(t.op)
            stack.append(t.op)

    for target in targets:
        if isinstance(target, Tensor):
            want_tensor(target)
        elif target not in seen:
            seen.add(target)
            stack.append(target)
    while stack:
        op = stack.pop()
        refs = get_op_def(op.type).ref_inputs
        for i, t in enumerate(op.inputs):
            if i not in refs:
                want_tensor(t)
        for c in op.control_inputs:
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return sorted(seen, key=lambda o: o.id)


def require_feeds(ops: Sequence[Operation]) -> None:
    """Raises for the first placeholder among the ops that must run (so it is not fed).

    Raises:
      InvalidArgumentError: naming the placeholder, its dtype and shape.
    """
    for op in ops:
        if op.type == "Placeholder":
            raise op.error(
                errors.InvalidArgumentError,
                f"you must feed a value for placeholder tensor {op.outputs[0].name!r}",
                got="no feed",
                expected=f"a feed of dtype {op.attrs['dtype'].name} and shape {op.attrs['shape']}",
            )


def make_plan(fetches: Sequence[Tensor | Operation], fed: frozenset[Tensor]) -> Plan:
    """Prunes the graph to `fetches` given `fed` and orders the work.

    Raises:
      InvalidArgumentError: a placeholder that must run is not fed.
    """
    ops = needed_ops(fetches, fed)
    require_feeds(ops)
    last_use: dict[Tensor, int] = {}
    read_inputs: list[tuple[Tensor | None, ...]] = []
    for index, op in enumerate(ops):
        refs = get_op_def(op.type).ref_inputs
        inputs = tuple(None if i in refs else t for i, t in enumerate(op.inputs))
        read_inputs.append(inputs)
        for t in inputs:
            if t is not None:
                last_use[t] = index
    keep = {f for f in fetches if isinstance(f, Tensor)}
    releases: list[list[Tensor]] = [[] for _ in ops]
    for t, index in last_use.items():
        if t not in keep:
            releases[index].append(t)
    steps = tuple(
        Step(op, get_op_def(op.type), read_inputs[i], tuple(releases[i]))
        for i, op in enumerate(ops)
    )
    return Plan(steps, tuple(fetches))


def _shapes_text(values: Sequence[np.ndarray | None]) -> str:
    return ", ".join("ref" if v is None else str(tuple(v.shape)) for v in values)


def run_op(step: Step, args: list[np.ndarray | None], ctx: ExecutionContext) -> list[np.ndarray]:
    """Runs one op's kernel, turning failures into errors that name the op."""
    op = step.op
    op_def = step.op_def
    try:
        if op_def.stateful_reference is not None:
            outputs = op_def.stateful_reference(ctx, op, args)
        else:
            result = op_def.reference(*args, **op.attrs)  # type: ignore[misc]
            outputs = list(result) if isinstance(result, tuple) else [result]
    except errors.GraphflowError as e:
        if e.op is not None:
            raise
        raise type(e)(errors.op_message(op.type, op.name, op.location, e.message), op) from None
    except Exception as e:
        raise op.error(
            errors.InvalidArgumentError,
            f"failed at run time: {e}",
            got="inputs of shapes " + _shapes_text(args),
        ) from e
    out = []
    for t, value in zip(op.outputs, outputs):
        value = np.asarray(value)
        if value.dtype != t.dtype.np or not t.shape.is_compatible_with(value.shape):
            raise op.error(
                errors.InternalError,
                "the kernel's result disagrees with the inferred dtype or shape",
                got=f"{value.dtype} {tuple(value.shape)}",
                expected=f"{t.dtype.name} {t.shape}",
            )
        out.append(value)
    return out


def execute(plan: Plan, feeds: dict[Tensor, np.ndarray], ctx: ExecutionContext) -> list[object]:
    """Runs a plan; returns the value of each fetch (None for an Operation)."""
    env: dict[Tensor, np.ndarray] = dict(feeds)
    with np.errstate(all="ignore"):
        for step in plan.steps:
            args = [None if t is None else env[t] for t in step.inputs]
            outputs = run_op(step, args, ctx)
            for t, value in zip(step.op.outputs, outputs):
                if t not in feeds:
                    env[t] = value
            for t in step.release:
                if t not in feeds:
                    env.pop(t, None)
    return [env[f] if isinstance(f, Tensor) else None for f in plan.fetches]
