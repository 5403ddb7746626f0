"""Reverse-mode automatic differentiation: `gradients(ys, xs)` builds the backward graph.

The algorithm is micrograd's, on a static graph: find the ops that lie on a
path from an x to a y, walk them in reverse creation order (a graph's
creation order is topological), and for each op with gradients on its
outputs call its registered rule, which builds ordinary ops computing the
gradients of its inputs. Contributions to one tensor are summed.

Invariants:
- the backward ops are ordinary registered ops in the same graph, so the
  compiler optimizes, fuses and compiles them like any other ops;
- only floating tensors carry gradients: a contribution to an integer or
  bool tensor is dropped, as TF does (an integer cast stops the gradient);
- an op declared `differentiable=False`, and a tensor in `stop_gradients`,
  pass no gradient to their inputs.
"""

from __future__ import annotations

from typing import Any

from graphflow import errors
from graphflow.graph import Operation, Tensor
from graphflow.ops.convert import _as_tensor_object, convert_to_tensor
from graphflow.ops.registry import apply_op, get_op_def
from graphflow.source import user_location


def _as_list(value: Any) -> tuple[list[Any], bool]:
    """(items, was_a_list) for one tensor or a list/tuple of them."""
    if isinstance(value, list | tuple):
        return list(value), True
    return [value], False


def _tensor(value: Any, what: str, location: tuple[str, int] | None) -> Tensor:
    tensor = _as_tensor_object(value)
    if tensor is None:
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Gradients",
                "gradients",
                location,
                f"{what} is not a tensor",
                got=f"{value!r} ({type(value).__name__})",
                expected="a Tensor or a Variable",
            )
        )
    return tensor


def _check_float(t: Tensor, role: str, location: tuple[str, int] | None) -> None:
    """Raises if `t` (a y or an x) is not floating: integers carry no gradient."""
    if t.dtype.is_floating:
        return
    raise errors.InvalidArgumentError(
        errors.op_message(
            t.op.type,
            t.op.name,
            t.op.location,
            f"cannot take gradients {role} {t.name}, a tensor of dtype {t.dtype.name} "
            f"(in gf.gradients called at {errors.location_text(location)})",
            got=t.dtype.name,
            expected="a float32 or float64 tensor (integer and bool tensors have no gradient)",
        ),
        t.op,
    )


def _relevant_ops(
    ys: list[Tensor], xs: list[Tensor], stop: set[Tensor]
) -> tuple[set[Operation], set[Tensor]]:
    """The ops on a path from an x to a y, and the tensors reached from the xs.

    A path does not pass through a tensor of `stop` (though an x that is in
    `stop` still receives its gradient).
    """
    graph = ys[0].graph
    reached: set[Tensor] = set(xs)
    forward: set[Operation] = set()
    # Creation order is topological, so one pass finds everything downstream of the xs.
    for op in graph.get_operations():
        if any(t in reached and (t not in stop or t in xs) for t in op.inputs):
            forward.add(op)
            reached.update(op.outputs)
    backward: set[Operation] = set()
    pending = [y.op for y in ys]
    while pending:
        op = pending.pop()
        if op in backward or op not in forward:
            continue
        backward.add(op)
        for t in op.inputs:
            if t not in stop and t.op in forward:
                pending.append(t.op)
    return backward, reached


def _sum(values: list[Tensor], name: str) -> Tensor:
    """The sum of gradient contributions (AddN as a chain of Adds, which the compiler fuses)."""
    total = values[0]
    for v in values[1:]:
        total = apply_op("Add", [total, v], name=name).outputs[0]
    return total


def gradients(
    ys: Any,
    xs: Any,
    grad_ys: Any = None,
    stop_gradients: Any = None,
    name: str = "gradients",
) -> list[Tensor | None]:
    """Symbolic derivatives of the sum of `ys` with respect to each of `xs` (TF1 semantics).

    The backward ops are added to the graph of `ys`, under the name scope
    `name` ("gradients/..."), and run like any other ops.

    Args:
      ys: a Tensor or a list of Tensors to differentiate.
      xs: a Tensor (or Variable) or a list of them.
      grad_ys: optional; one tensor (or None, or data) per y: the gradient
        flowing into that y. Default: ones of the y's shape.
      stop_gradients: optional Tensor or list: no gradient flows through
        these tensors, they are treated as constants (an x listed here
        still receives its own gradient).
      name: the name scope of the backward ops.

    Returns:
      A list with one entry per x: the gradient, a Tensor of the x's shape
      and dtype, or None when no y depends on that x (through
      differentiable ops).

    Raises:
      InvalidArgumentError: a y or an x that is not a float tensor, grad_ys
        of the wrong length, dtype or shape, tensors of different graphs.
      UnimplementedError: an op on the path whose type has no gradient rule.
    """
    location = user_location()
    y_list, _ = _as_list(ys)
    x_list, _ = _as_list(xs)
    y_list = [_tensor(y, "a y", location) for y in y_list]
    x_list = [_tensor(x, "an x", location) for x in x_list]
    if not y_list:
        raise errors.InvalidArgumentError(
            errors.op_message("Gradients", name, location, "no ys", expected="at least one tensor")
        )
    graph = y_list[0].graph
    for t in y_list + x_list:
        if t.graph is not graph:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "Gradients",
                    name,
                    location,
                    f"{t.name} belongs to another graph than the ys",
                    expected="ys and xs of one graph",
                )
            )
    for y in y_list:
        _check_float(y, "of", location)
    for x in x_list:
        _check_float(x, "with respect to", location)
    stop_list, _ = _as_list(stop_gradients) if stop_gradients is not None else ([], False)
    stop = {_tensor(s, "a stop_gradients entry", location) for s in stop_list}

    if grad_ys is None:
        gy_list: list[Any] = [None] * len(y_list)
    else:
        gy_list, _ = _as_list(grad_ys)
        if len(gy_list) != len(y_list):
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "Gradients",
                    name,
                    location,
                    "grad_ys must have one entry per y",
                    got=f"{len(gy_list)} grad_ys for {len(y_list)} ys",
                    expected=f"{len(y_list)} entries",
                )
            )

    ops, reached = _relevant_ops(y_list, x_list, stop)
    grads: dict[Tensor, list[Tensor]] = {}
    with graph.as_default(), graph.name_scope(name):
        for y, gy in zip(y_list, gy_list):
            if gy is None:
                gy = apply_op("OnesLike", [y], {"dtype": None}, name=f"{y.op.name}_grad_ys")
                gy = gy.outputs[0]
            else:
                gy = _grad_y(y, gy, name, location)
            grads.setdefault(y, []).append(gy)

        for op in sorted(ops, key=lambda o: o.id, reverse=True):
            out_grads: list[Tensor | None] = []
            for t in op.outputs:
                contributions = grads.get(t)
                if contributions and len(contributions) > 1:
                    contributions[:] = [_sum(contributions, f"{op.name}_grad/AddN")]
                out_grads.append(contributions[0] if contributions else None)
            if all(g is None for g in out_grads) or any(t in stop for t in op.outputs):
                continue
            op_def = get_op_def(op.type)
            if not op_def.differentiable:
                continue
            if op_def.gradient is None:
                raise errors.UnimplementedError(
                    errors.op_message(
                        op.type,
                        op.name,
                        op.location,
                        f"no gradient is defined for op type {op.type} "
                        f"(in gf.gradients called at {errors.location_text(location)})",
                        expected="ops with a gradient rule on the path from xs to ys "
                        "(see the gradient column of docs/ops.md)",
                    ),
                    op,
                )
            with graph.name_scope(f"{op.name}_grad"):
                in_grads = op_def.gradient(op, out_grads)
            if len(in_grads) != len(op.inputs):
                raise errors.InternalError(
                    f"the gradient rule of {op.type} returned {len(in_grads)} gradients "
                    f"for {len(op.inputs)} inputs"
                )
            for t, g in zip(op.inputs, in_grads):
                # Integer tensors carry no gradient; unreached inputs need none.
                if g is None or t not in reached or not t.dtype.is_floating:
                    continue
                if g.dtype != t.dtype:
                    raise errors.InternalError(
                        f"the gradient rule of {op.type} gave a {g.dtype.name} gradient "
                        f"for the {t.dtype.name} input {t.name}"
                    )
                grads.setdefault(t, []).append(g)

        result: list[Tensor | None] = []
        for x in x_list:
            contributions = grads.get(x)
            if not contributions:
                result.append(None)
                continue
            if len(contributions) > 1:
                contributions[:] = [_sum(contributions, f"{x.op.name}_grad/AddN")]
            result.append(contributions[0])
    return result


def _grad_y(y: Tensor, gy: Any, name: str, location: tuple[str, int] | None) -> Tensor:
    """`gy` as a tensor of y's dtype and a shape compatible with y's."""
    given = _as_tensor_object(gy)
    if given is not None:
        if given.dtype != y.dtype:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "Gradients",
                    name,
                    location,
                    f"the grad_ys entry for {y.name} has another dtype",
                    got=given.dtype.name,
                    expected=y.dtype.name,
                )
            )
        t = given
    else:
        t = convert_to_tensor(gy, dtype=y.dtype)
    if not t.shape.is_compatible_with(y.shape):
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Gradients",
                name,
                location,
                f"the grad_ys entry for {y.name} has another shape",
                got=str(t.shape),
                expected=str(y.shape),
            )
        )
    return t
