"""Gradient rules of the elementwise ops, the reductions and matmul, and their shared helpers.

A rule is `grad(op, output_grads) -> input_grads` (registry.GradientRule):
it builds ordinary ops computing the gradient of each input from the
gradients of the outputs (None for an output nothing depends on, or an
input that has no gradient). Rules only use registered ops, most of which
the compiler lowers, so the backward graph fuses and compiles.

Broadcasting: the gradient of a broadcast input is the output gradient
summed over the broadcast axes (`unbroadcast`). Which axes those are is
decided when the graph is built wherever the static shapes tell; only a
`None` dim that may be 1 at run time while the output's is larger leaves the
choice to run time, through the SumToShapeOf op declared here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType
from graphflow.graph import Operation, Tensor
from graphflow.ops import array_ops, creation_ops, linalg_ops, math_ops
from graphflow.ops.registry import STRUCTURED, apply_op, defop, set_gradient
from graphflow.shapes import Shape

Grads = list[Tensor | None]
Rule = Callable[[Operation, list[Tensor | None]], Grads]


# -- helpers shared by every rule module ---------------------------------------------------
def op_output(
    op_type: str, inputs: Sequence[Tensor], attrs: Mapping[str, Any] | None = None
) -> Tensor:
    """The first output of a new op of `op_type` (named after its type, in the current scope)."""
    return apply_op(op_type, list(inputs), dict(attrs or {}), name=op_type).outputs[0]


def zeros_like(t: Tensor) -> Tensor:
    return creation_ops.zeros_like(t)


def scalar(value: float, dtype: DType) -> Tensor:
    """A constant scalar of `dtype` (an exact float64 value rounded once)."""
    return creation_ops.constant(np.asarray(value, dtype=dtype.np))


def broadcast_like(g: Tensor, x: Tensor) -> Tensor:
    """`g` (whose shape broadcasts to x's) broadcast to the shape of `x` at run time."""
    if g.shape.is_fully_defined and x.shape.is_fully_defined and g.shape == x.shape:
        return g
    if x.shape.is_fully_defined:
        return array_ops.broadcast_to(g, x.shape.as_list())
    # Adding zeros of x's shape broadcasts g to it whatever the dims are at run time.
    return math_ops.add(g, zeros_like(x))


def _dim_from_end(shape: Shape, k: int) -> int | str | None:
    """Dim k from the end (k >= 1) of `shape`, or "missing" for a shorter rank."""
    assert shape.dims is not None
    return shape.dims[-k] if k <= len(shape.dims) else "missing"


def unbroadcast(
    grad: Tensor, x: Tensor, others: Sequence[Tensor] = (), core_dims: int = 0
) -> Tensor:
    """`grad` (of the broadcast shape) summed down to the shape of `x`.

    Args:
      grad: the gradient of the op's output.
      x: the input the gradient is for.
      others: the op's other inputs; they tell whether a `None` dim of x
        can have been broadcast.
      core_dims: trailing dims that never broadcast (2 for matmul).
    """
    gshape, xshape = grad.shape, x.shape
    if gshape.rank is None or xshape.rank is None or any(o.shape.rank is None for o in others):
        return sum_to_shape_of(grad, x)
    lead = gshape.rank - xshape.rank
    axes = list(range(lead))
    assert xshape.dims is not None and gshape.dims is not None
    for i, d in enumerate(xshape.dims[: xshape.rank - core_dims]):
        a = i + lead
        out = gshape.dims[a]
        if d == 1:
            if out != 1:
                axes.append(a)
        elif d is None and out != 1:
            # x's dim was broadcast iff it is 1 at run time while the output's is
            # larger; no operand can make the output larger if all others have 1 here.
            k = gshape.rank - a
            if any(_dim_from_end(o.shape, k) not in (1, "missing") for o in others):
                return sum_to_shape_of(grad, x)
    if not axes:
        return grad
    summed = apply_op("Sum", [grad], {"axis": tuple(axes), "keepdims": True}, name="Sum")
    out = summed.outputs[0]
    if lead:
        out = array_ops.squeeze(out, list(range(lead)))
    return out


# -- SumToShapeOf: unbroadcasting decided at run time ---------------------------------------
def _sum_to_shape_of_reference(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    lead = x.ndim - like.ndim
    fits = lead >= 0 and all(d in (1, o) for d, o in zip(like.shape, x.shape[lead:]))
    if not fits:
        raise errors.InvalidArgumentError(
            f"cannot sum a tensor of shape {x.shape} to shape {like.shape}; expected a "
            "shape that broadcasts to it"
        )
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(like.shape) if d == 1 and x.shape[i + lead] != 1
    )
    return np.sum(x, axis=axes, keepdims=True, dtype=x.dtype).reshape(like.shape)


defop(
    "SumToShapeOf",
    STRUCTURED,
    lambda shapes, attrs: [shapes[1]],
    dtype=lambda in_dtypes, attrs: [in_dtypes[0]],
    reference=_sum_to_shape_of_reference,
    unknown_rank_ok=True,
    doc="x summed over the axes along which `like` broadcasts to it (a gradient's unbroadcast)",
)


def sum_to_shape_of(x: Tensor, like: Tensor) -> Tensor:
    """`x` summed over the axes along which `like`'s shape broadcasts to x's (at run time)."""
    return op_output("SumToShapeOf", [x, like])


set_gradient("SumToShapeOf", lambda op, grads: [broadcast_like(grads[0], op.inputs[0]), None])


# -- elementwise -----------------------------------------------------------------------------
def _binary(fn: Callable[[Operation, Tensor], tuple[Tensor | None, Tensor | None]]) -> Rule:
    """A rule from the unreduced gradients of (x, y); each is summed to its input's shape."""

    def rule(op: Operation, grads: list[Tensor | None]) -> Grads:
        g = grads[0]
        assert g is not None
        x, y = op.inputs
        gx, gy = fn(op, g)
        return [
            None if gx is None else unbroadcast(gx, x, [y]),
            None if gy is None else unbroadcast(gy, y, [x]),
        ]

    return rule


def _unary(fn: Callable[[Operation, Tensor], Tensor]) -> Rule:
    def rule(op: Operation, grads: list[Tensor | None]) -> Grads:
        g = grads[0]
        assert g is not None
        return [fn(op, g)]

    return rule


def _where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return math_ops.where(cond, a, b)


def _masked(cond: Tensor, g: Tensor) -> Tensor:
    """g where cond holds, else 0 (a where, so an Inf or NaN gradient elsewhere stays out)."""
    return _where(cond, g, zeros_like(g))


def _pow_grads(op: Operation, g: Tensor) -> tuple[Tensor, Tensor]:
    x, y = op.inputs
    z = op.outputs[0]
    gx = g * y * math_ops.pow(x, y - 1.0)
    # d/dy x**y = log(x) x**y, taken as 0 where x <= 0 (as TF: the real log is undefined).
    safe = _where(x > 0.0, x, creation_ops.ones_like(x))
    log_x = _where(x > 0.0, math_ops.log(safe), zeros_like(x))
    return gx, g * z * log_x


def _floormod_grads(op: Operation, g: Tensor) -> tuple[Tensor, Tensor]:
    x, y = op.inputs
    return g, -g * math_ops.floor(x / y)


_BINARY_RULES: dict[str, Callable[[Operation, Tensor], tuple[Tensor | None, Tensor | None]]] = {
    "Add": lambda op, g: (g, g),
    "Sub": lambda op, g: (g, -g),
    "Mul": lambda op, g: (g * op.inputs[1], op.inputs[0] * g),
    "RealDiv": lambda op, g: (
        g / op.inputs[1],
        g * ((-op.inputs[0] / op.inputs[1]) / op.inputs[1]),
    ),
    # Piecewise constant: no gradient, as TF's FloorDiv.
    "FloorDiv": lambda op, g: (None, None),
    "FloorMod": _floormod_grads,
    "Pow": _pow_grads,
    # Ties go to x, as TF does.
    "Maximum": lambda op, g: (
        _masked(op.inputs[0] >= op.inputs[1], g),
        _masked(op.inputs[0] < op.inputs[1], g),
    ),
    "Minimum": lambda op, g: (
        _masked(op.inputs[0] <= op.inputs[1], g),
        _masked(op.inputs[0] > op.inputs[1], g),
    ),
    "SquaredDifference": lambda op, g: (
        g * (2.0 * (op.inputs[0] - op.inputs[1])),
        -(g * (2.0 * (op.inputs[0] - op.inputs[1]))),
    ),
}


def _erf_grad(op: Operation, g: Tensor) -> Tensor:
    x = op.inputs[0]
    return g * (scalar(2 / math.sqrt(math.pi), x.dtype) * math_ops.exp(-math_ops.square(x)))


_UNARY_RULES: dict[str, Callable[[Operation, Tensor], Tensor]] = {
    "Neg": lambda op, g: -g,
    "Abs": lambda op, g: g * math_ops.sign(op.inputs[0]),
    "Square": lambda op, g: g * (2.0 * op.inputs[0]),
    "Sqrt": lambda op, g: g * (0.5 / op.outputs[0]),
    "Rsqrt": lambda op, g: g * (-0.5 * op.outputs[0] * op.outputs[0] * op.outputs[0]),
    "Reciprocal": lambda op, g: -g * math_ops.square(op.outputs[0]),
    "Exp": lambda op, g: g * op.outputs[0],
    "Expm1": lambda op, g: g * math_ops.exp(op.inputs[0]),
    "Log": lambda op, g: g / op.inputs[0],
    "Log1p": lambda op, g: g / (1.0 + op.inputs[0]),
    "Sin": lambda op, g: g * math_ops.cos(op.inputs[0]),
    "Cos": lambda op, g: -g * math_ops.sin(op.inputs[0]),
    "Tanh": lambda op, g: g * (1.0 - math_ops.square(op.outputs[0])),
    "Sigmoid": lambda op, g: g * (op.outputs[0] * (1.0 - op.outputs[0])),
    "Erf": _erf_grad,
    "Identity": lambda op, g: g,
    "PlaceholderWithDefault": lambda op, g: g,
}


def _cast_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # Only a float -> float cast passes a gradient; a cast to or from ints stops it.
    g = grads[0]
    x = op.inputs[0]
    if g is None or not (x.dtype.is_floating and op.outputs[0].dtype.is_floating):
        return [None]
    return [g if x.dtype == g.dtype else math_ops.cast(g, x.dtype)]


def _select_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    cond, x, y = op.inputs
    zeros = zeros_like(g)
    return [
        None,
        unbroadcast(_where(cond, g, zeros), x, [cond, y]),
        unbroadcast(_where(cond, zeros, g), y, [cond, x]),
    ]


def _clip_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # As TF: the gradient goes to x inside [lo, hi], to lo below, to hi above.
    g = grads[0]
    assert g is not None
    x, lo, hi = op.inputs
    below, above = x < lo, x > hi
    zeros = zeros_like(g)
    gx = _where(math_ops.logical_or(below, above), zeros, g)
    return [
        unbroadcast(gx, x, [lo, hi]),
        unbroadcast(_where(below, g, zeros), lo, [x, hi]),
        unbroadcast(_where(above, g, zeros), hi, [x, lo]),
    ]


def _fill_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    rank = g.shape.rank
    axes = None if rank is None else tuple(range(rank))
    return [op_output("Sum", [g], {"axis": axes, "keepdims": False})]


for _type, _fn in _BINARY_RULES.items():
    set_gradient(_type, _binary(_fn))
for _type, _fn1 in _UNARY_RULES.items():
    set_gradient(_type, _unary(_fn1))
set_gradient("Cast", _cast_grad)
set_gradient("SelectV2", _select_grad)
set_gradient("ClipByValue", _clip_grad)
set_gradient("Fill", _fill_grad)
set_gradient("VariableV2", lambda op, grads: [])


# -- reductions ------------------------------------------------------------------------------
def keepdims_shape(g: Tensor, op: Operation) -> Tensor:
    """The gradient (or value) of a reduction's output, with its reduced axes back as 1s."""
    axis, keepdims = op.attrs["axis"], op.attrs["keepdims"]
    x = op.inputs[0]
    if keepdims:
        return g
    if x.shape.rank is None:
        if axis is None:
            return g  # every axis reduced: a scalar broadcasts against anything
        raise errors.UnimplementedError(
            errors.op_message(
                op.type,
                op.name,
                op.location,
                "the gradient of a reduction over some axes of a tensor of unknown rank",
                expected="an input of known rank, keepdims=True, or a reduction of every axis",
            ),
            op,
        )
    for a in sorted(axis if axis is not None else range(x.shape.rank)):
        g = array_ops.expand_dims(g, a)
    return g


def _sum_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    return [broadcast_like(keepdims_shape(g, op), op.inputs[0])]


def _mean_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    x, y = op.inputs[0], op.outputs[0]
    n_in, n_out = x.shape.num_elements(), y.shape.num_elements()
    if n_in is not None and n_out is not None:
        count: Tensor = scalar(n_in / max(n_out, 1), x.dtype)
    else:
        size_in = math_ops.cast(array_ops.size(x), x.dtype)
        size_out = math_ops.cast(array_ops.size(y), x.dtype)
        count = size_in / math_ops.maximum(size_out, 1.0)
    return [broadcast_like(keepdims_shape(g, op) / count, x)]


def _extremum_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # The gradient is split evenly between tied extremes, as TF does.
    g = grads[0]
    assert g is not None
    x = op.inputs[0]
    y = keepdims_shape(op.outputs[0], op)
    hits = math_ops.cast(math_ops.equal(x, y), x.dtype)
    count = op_output("Sum", [hits], {"axis": op.attrs["axis"], "keepdims": True})
    return [keepdims_shape(g, op) * (hits / count)]


def _prod_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # d prod / d x_i is the product of the others. Without dividing by x_i
    # (exact at zeros): with no zero it is prod / x_i; with one zero, the
    # product of the nonzeros at the zero and 0 elsewhere; with more, 0.
    g = grads[0]
    assert g is not None
    x = op.inputs[0]
    axis = op.attrs["axis"]
    is_zero = math_ops.equal(x, 0.0)
    ones = creation_ops.ones_like(x)
    nonzero = _where(is_zero, ones, x)
    prod_nonzero = op_output("Prod", [nonzero], {"axis": axis, "keepdims": True})
    zeros_count = op_output(
        "Sum", [math_ops.cast(is_zero, x.dtype)], {"axis": axis, "keepdims": True}
    )
    no_zero = prod_nonzero / nonzero
    one_zero = _where(is_zero, prod_nonzero * ones, zeros_like(x))
    others = _where(
        math_ops.equal(zeros_count, 0.0),
        no_zero,
        _where(math_ops.equal(zeros_count, 1.0), one_zero, zeros_like(x)),
    )
    return [keepdims_shape(g, op) * others]


def _logsumexp_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    x = op.inputs[0]
    y = keepdims_shape(op.outputs[0], op)
    return [keepdims_shape(g, op) * math_ops.exp(x - y)]


def _l2_loss_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    return [keepdims_shape(g, op) * op.inputs[0]]


set_gradient("Sum", _sum_grad)
set_gradient("Mean", _mean_grad)
set_gradient("Max", _extremum_grad)
set_gradient("Min", _extremum_grad)
set_gradient("Prod", _prod_grad)
set_gradient("LogSumExp", _logsumexp_grad)
set_gradient("L2Loss", _l2_loss_grad)


# -- matmul ----------------------------------------------------------------------------------
def _matmul_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    a, b = op.inputs
    ta, tb = op.attrs["transpose_a"], op.attrs["transpose_b"]
    mm = linalg_ops.matmul
    if not ta and not tb:
        ga, gb = mm(g, b, transpose_b=True), mm(a, g, transpose_a=True)
    elif not ta and tb:
        ga, gb = mm(g, b), mm(g, a, transpose_a=True)
    elif ta and not tb:
        ga, gb = mm(b, g, transpose_b=True), mm(a, g)
    else:
        ga, gb = (
            mm(b, g, transpose_a=True, transpose_b=True),
            mm(g, a, transpose_a=True, transpose_b=True),
        )
    # Batch dims broadcast like an elementwise op's; the matrix dims never do.
    return [unbroadcast(ga, a, [b], core_dims=2), unbroadcast(gb, b, [a], core_dims=2)]


set_gradient("MatMul", _matmul_grad)

__all__ = [
    "broadcast_like",
    "keepdims_shape",
    "op_output",
    "scalar",
    "sum_to_shape_of",
    "unbroadcast",
    "zeros_like",
]
