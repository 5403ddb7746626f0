"""Ops that create values: constants, placeholders, fills, ranges, random numbers, NoOp.

Random ops follow TF1's seeding: with a graph seed (`gf.set_random_seed`)
or an op seed (`seed=`), every op draws a reproducible sequence, and each run
of the op draws the next numbers of it; with neither, numbers differ between
sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import dtypes, errors
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Operation, Tensor, get_default_graph
from graphflow.ops.convert import convert_to_tensor, default_numpy_value, static_ints
from graphflow.ops.registry import (
    CONTROL,
    ELEMENTWISE,
    RANDOM,
    SOURCE,
    ExecutionContext,
    apply_op,
    defop,
    fail,
)
from graphflow.shapes import Shape, as_shape
from graphflow.source import user_location


def _attr_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    return [attrs["dtype"]]


def _attr_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [attrs["shape"]]


# -- constants and placeholders ------------------------------------------------------------
defop(
    "Const",
    SOURCE,
    lambda shapes, attrs: [Shape(attrs["value"].shape)],
    dtype=_attr_dtype,
    reference=lambda value, dtype: value,
    differentiable=False,
    doc="a constant array held in the graph",
)


def _placeholder_reference(shape: Shape, dtype: DType) -> np.ndarray:
    # A Session checks feeds before running anything, so this only runs on a bug.
    raise errors.InternalError("a Placeholder was run without a feed")


defop(
    "Placeholder",
    SOURCE,
    _attr_shape,
    dtype=_attr_dtype,
    reference=_placeholder_reference,
    differentiable=False,
    doc="a value fed at run time through feed_dict",
)


def _with_default_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    if not shapes[0].is_compatible_with(attrs["shape"]):
        raise fail(
            "the default value does not fit the shape",
            got=str(shapes[0]),
            expected=f"a value of shape {attrs['shape']}",
        )
    return [attrs["shape"]]


defop(
    "PlaceholderWithDefault",
    SOURCE,
    _with_default_shape,
    reference=lambda default, shape: default,
    unknown_rank_ok=True,
    doc="its input unless fed",
)


def constant(
    value: Any,
    dtype: Any = None,
    shape: Any = None,
    name: str = "Const",
    verify_shape: bool = False,
) -> Tensor:
    """A constant tensor.

    Args:
      value: a Python scalar, a (nested) list or a NumPy array. Python floats
        default to float32 and Python ints to int32, as in TF1.
      dtype: optional dtype to convert the value to (safely).
      shape: optional shape; a scalar or a value with that many elements is
        broadcast or reshaped to it.
      name: name of the op.

    Raises:
      InvalidArgumentError: a value that does not convert or does not fit `shape`.
    """
    want = as_dtype(dtype) if dtype is not None else None
    try:
        array = default_numpy_value(value, want, what="the value")
    except errors.InvalidArgumentError as e:
        raise errors.InvalidArgumentError(
            errors.op_message("Const", name, user_location(), e.message)
        ) from None
    if shape is not None:
        target = tuple(static_ints(shape, "shape", "Const"))
        size = int(np.prod(target))
        if array.size == 1:
            array = np.broadcast_to(array.reshape(()), target)
        elif array.size == size and not verify_shape:
            array = array.reshape(target)
        elif array.shape != target:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "Const",
                    name,
                    user_location(),
                    "value does not fit shape",
                    got=f"{array.size} elements of shape {array.shape}",
                    expected=f"shape {target} ({size} elements) or one element",
                )
            )
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # np.ascontiguousarray would turn a scalar into 1-D
    dtype_ = as_dtype(array.dtype)
    return apply_op("Const", [], {"value": array, "dtype": dtype_}, name=name).outputs[0]


def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A tensor whose value is fed at run time: `sess.run(y, feed_dict={x: value})`.

    Args:
      dtype: the element type.
      shape: the static shape; None dims accept any size, shape None any rank.

    Raises:
      InvalidArgumentError: for an unsupported dtype or a malformed shape.
    """
    try:
        static = as_shape(shape)
    except (TypeError, ValueError) as e:
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Placeholder",
                name or "Placeholder",
                user_location(),
                "malformed shape",
                got=repr(shape),
                expected="a list of ints and Nones, or None",
            )
        ) from e
    return apply_op(
        "Placeholder",
        [],
        {"dtype": as_dtype(dtype), "shape": static},
        name=name or "Placeholder",
    ).outputs[0]


def placeholder_with_default(input: Any, shape: Any, name: str | None = None) -> Tensor:
    """A placeholder that gives `input` when not fed."""
    default = convert_to_tensor(input)
    return apply_op(
        "PlaceholderWithDefault",
        [default],
        {"shape": as_shape(shape)},
        name=name or "PlaceholderWithDefault",
    ).outputs[0]


# -- fills and ranges ----------------------------------------------------------------------
defop(
    "Fill",
    ELEMENTWISE,
    lambda shapes, attrs: [Shape(attrs["shape"])],
    reference=lambda value, shape: np.full(shape, value, dtype=value.dtype),
    doc="an array of `shape` filled with a scalar",
)


def fill(dims: Any, value: Any, name: str | None = None) -> Tensor:
    """An array of shape `dims` filled with the scalar `value`."""
    shape = static_ints(dims, "dims", "Fill")
    t = convert_to_tensor(value)
    if t.shape.rank not in (0, None):
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Fill",
                name or "Fill",
                user_location(),
                "value must be a scalar",
                got=f"shape {t.shape}",
                expected="shape ()",
            )
        )
    if any(d < 0 for d in shape):
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Fill",
                name or "Fill",
                user_location(),
                "negative dimension",
                got=str(shape),
                expected="dims >= 0",
            )
        )
    return apply_op("Fill", [t], {"shape": shape}, name=name or "Fill").outputs[0]


def _filled(value: float, shape: Any, dtype: Any, name: str) -> Tensor:
    dt = as_dtype(dtype)
    return fill(shape, constant(np.asarray(value, dtype=dt.np)), name=name)


def zeros(shape: Any, dtype: Any = dtypes.float32, name: str | None = None) -> Tensor:
    """An array of zeros (a Fill op)."""
    return _filled(0, shape, dtype, name or "zeros")


def ones(shape: Any, dtype: Any = dtypes.float32, name: str | None = None) -> Tensor:
    """An array of ones (a Fill op)."""
    return _filled(1, shape, dtype, name or "ones")


def _like_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    return [attrs["dtype"] or in_dtypes[0]]


def _like_reference(value: float) -> Any:
    def reference(x: np.ndarray, dtype: DType | None) -> np.ndarray:
        return np.full(x.shape, value, dtype=(dtype.np if dtype else x.dtype))

    return reference


defop(
    "ZerosLike",
    ELEMENTWISE,
    lambda shapes, attrs: [shapes[0]],
    dtype=_like_dtype,
    reference=_like_reference(0),
    differentiable=False,
    doc="zeros of the input's shape",
)
defop(
    "OnesLike",
    ELEMENTWISE,
    lambda shapes, attrs: [shapes[0]],
    dtype=_like_dtype,
    reference=_like_reference(1),
    differentiable=False,
    doc="ones of the input's shape",
)


def zeros_like(
    tensor: Any, dtype: Any = None, name: str | None = None, optimize: bool = True
) -> Tensor:
    """Zeros with the shape (at run time) and dtype (unless given) of `tensor`."""
    t = convert_to_tensor(tensor)
    dt = as_dtype(dtype) if dtype is not None else None
    return apply_op("ZerosLike", [t], {"dtype": dt}, name=name or "zeros_like").outputs[0]


def ones_like(
    tensor: Any, dtype: Any = None, name: str | None = None, optimize: bool = True
) -> Tensor:
    """Ones with the shape (at run time) and dtype (unless given) of `tensor`."""
    t = convert_to_tensor(tensor)
    dt = as_dtype(dtype) if dtype is not None else None
    return apply_op("OnesLike", [t], {"dtype": dt}, name=name or "ones_like").outputs[0]


def _range_count(start: float, limit: float, delta: float) -> int:
    return max(0, int(np.ceil((limit - start) / delta)))


defop(
    "Range",
    SOURCE,
    lambda shapes, attrs: [Shape([_range_count(attrs["start"], attrs["limit"], attrs["delta"])])],
    dtype=_attr_dtype,
    reference=lambda start, limit, delta, dtype: np.arange(start, limit, delta, dtype=dtype.np)[
        : _range_count(start, limit, delta)
    ],
    differentiable=False,
    doc="start, start + delta, ... below limit",
)


def range(
    start: Any,
    limit: Any = None,
    delta: Any = 1,
    dtype: Any = None,
    name: str = "range",
) -> Tensor:
    """[start, start + delta, ...) up to `limit`, like Python's range and np.arange.

    The bounds must be known when the graph is built. dtype defaults to
    int32 for int arguments and float32 otherwise, as in TF1.

    Raises:
      InvalidArgumentError: delta == 0.
    """
    if limit is None:
        start, limit = 0, start
    values = [
        np.asarray(_static_scalar(v, n))
        for v, n in ((start, "start"), (limit, "limit"), (delta, "delta"))
    ]
    if dtype is None:
        dt = dtypes.float32 if any(v.dtype.kind == "f" for v in values) else dtypes.int32
    else:
        dt = as_dtype(dtype)
    s, lim, d = (v.item() for v in values)
    if d == 0:
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Range",
                name,
                user_location(),
                "delta must not be 0",
                got="0",
                expected="a non-zero step",
            )
        )
    return apply_op(
        "Range", [], {"start": s, "limit": lim, "delta": d, "dtype": dt}, name=name
    ).outputs[0]


def _static_scalar(value: Any, what: str) -> Any:
    from graphflow.ops.convert import static_value

    array = static_value(value, what, "Range")
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise errors.InvalidArgumentError(
            errors.op_message(
                "Range", "range", user_location(), f"{what} must be a number", got=repr(value)
            )
        )
    return array


# -- random numbers ------------------------------------------------------------------------
def _random_kernel(draw: Any) -> Any:
    def kernel(ctx: ExecutionContext, op: Operation, inputs: list[np.ndarray]) -> list[np.ndarray]:
        attrs = op.attrs
        return [np.asarray(draw(ctx.rng(op), attrs), dtype=attrs["dtype"].np)]

    return kernel


def _standard_normal(rng: np.random.Generator, attrs: Mapping[str, Any]) -> np.ndarray:
    return rng.standard_normal(attrs["shape"], dtype=attrs["dtype"].np)


def _uniform(rng: np.random.Generator, attrs: Mapping[str, Any]) -> np.ndarray:
    return rng.random(attrs["shape"], dtype=attrs["dtype"].np)


def _uniform_int(rng: np.random.Generator, attrs: Mapping[str, Any]) -> np.ndarray:
    return rng.integers(attrs["minval"], attrs["maxval"], attrs["shape"], dtype=attrs["dtype"].np)


def _truncated_normal(rng: np.random.Generator, attrs: Mapping[str, Any]) -> np.ndarray:
    # Redraw everything outside two standard deviations, as TF does.
    out = rng.standard_normal(attrs["shape"])
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out


for _name, _draw, _doc in (
    ("RandomStandardNormal", _standard_normal, "samples of N(0, 1)"),
    ("RandomUniform", _uniform, "samples of U[0, 1)"),
    ("RandomUniformInt", _uniform_int, "integers uniform in [minval, maxval)"),
    ("TruncatedNormal", _truncated_normal, "N(0, 1) samples redrawn outside [-2, 2]"),
):
    defop(
        _name,
        RANDOM,
        _attr_shape,
        dtype=_attr_dtype,
        stateful_reference=_random_kernel(_draw),
        differentiable=False,
        doc=_doc,
    )


DEFAULT_GRAPH_SEED = 87654321


def resolve_seeds(graph: Any, op_seed: int | None) -> tuple[int, int] | None:
    """TF1's rule: the (graph seed, op seed) pair an op draws with, or None for fresh entropy.

    With a graph seed and no op seed, the op seed is the op's position in
    the graph, so a rebuilt graph draws the same numbers.
    """
    if graph.seed is not None:
        return (graph.seed, op_seed if op_seed is not None else graph.version)
    if op_seed is not None:
        return (DEFAULT_GRAPH_SEED, int(op_seed))
    return None


def set_random_seed(seed: int | None) -> None:
    """Sets the graph-level random seed of the default graph (TF1's tf.set_random_seed)."""
    get_default_graph().seed = None if seed is None else int(seed)


def _random_op(
    op_type: str,
    shape: Any,
    dtype: Any,
    seed: int | None,
    name: str,
    extra: Mapping[str, Any] | None = None,
) -> Tensor:
    dims = static_ints(shape, "shape", op_type)
    if any(d < 0 for d in dims):
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name,
                user_location(),
                "negative dimension",
                got=str(dims),
                expected="dims >= 0",
            )
        )
    graph = get_default_graph()
    attrs = {"shape": dims, "dtype": as_dtype(dtype), "seed": resolve_seeds(graph, seed)}
    attrs.update(extra or {})
    return apply_op(op_type, [], attrs, name=name).outputs[0]


def _scale_shift(sample: Tensor, scale: Any, shift: Any, name: str) -> Tensor:
    from graphflow.ops import math_ops

    out = sample
    if not (isinstance(scale, int | float) and scale == 1):
        out = math_ops.multiply(out, scale, name=f"{name}_mul")
    if not (isinstance(shift, int | float) and shift == 0):
        out = math_ops.add(out, shift, name=f"{name}_add")
    return out


def _float_dtype(dtype: Any, api: str) -> DType:
    dt = as_dtype(dtype)
    if not dt.is_floating:
        raise errors.InvalidArgumentError(
            errors.op_message(
                api,
                api,
                user_location(),
                "unsupported dtype",
                got=dt.name,
                expected="float32 or float64",
            )
        )
    return dt


def random_normal(
    shape: Any,
    mean: Any = 0.0,
    stddev: Any = 1.0,
    dtype: Any = dtypes.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    """Samples of N(mean, stddev**2)."""
    dt = _float_dtype(dtype, "random_normal")
    name = name or "random_normal"
    sample = _random_op("RandomStandardNormal", shape, dt, seed, name)
    return _scale_shift(sample, stddev, mean, name)


def truncated_normal(
    shape: Any,
    mean: Any = 0.0,
    stddev: Any = 1.0,
    dtype: Any = dtypes.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    """Samples of N(mean, stddev**2), redrawn when more than two stddevs from the mean."""
    dt = _float_dtype(dtype, "truncated_normal")
    name = name or "truncated_normal"
    sample = _random_op("TruncatedNormal", shape, dt, seed, name)
    return _scale_shift(sample, stddev, mean, name)


def random_uniform(
    shape: Any,
    minval: Any = 0,
    maxval: Any = None,
    dtype: Any = dtypes.float32,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    """Samples uniform in [minval, maxval); for int dtypes maxval is required."""
    dt = as_dtype(dtype)
    name = name or "random_uniform"
    if dt.is_integer:
        if maxval is None:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "RandomUniformInt",
                    name,
                    user_location(),
                    "maxval is required for integer dtypes",
                    got="None",
                    expected="an int maxval > minval",
                )
            )
        lo, hi = int(minval), int(maxval)
        if hi <= lo:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "RandomUniformInt",
                    name,
                    user_location(),
                    "empty range",
                    got=f"[{lo}, {hi})",
                    expected="minval < maxval",
                )
            )
        return _random_op("RandomUniformInt", shape, dt, seed, name, {"minval": lo, "maxval": hi})
    dt = _float_dtype(dt, "random_uniform")
    if maxval is None:
        maxval = 1.0
    sample = _random_op("RandomUniform", shape, dt, seed, name)
    if isinstance(minval, int | float) and isinstance(maxval, int | float):
        return _scale_shift(sample, maxval - minval, minval, name)
    from graphflow.ops import math_ops

    return _scale_shift(sample, math_ops.subtract(maxval, minval), minval, name)


# -- NoOp and groups -----------------------------------------------------------------------
defop(
    "NoOp",
    CONTROL,
    lambda shapes, attrs: [],
    dtype=lambda d, a: [],
    reference=lambda: (),
    num_outputs=0,
    differentiable=False,
    doc="does nothing; groups control dependencies",
)


def no_op(name: str | None = None) -> Operation:
    """An op that does nothing (useful with control dependencies)."""
    return apply_op("NoOp", [], name=name or "NoOp")


def group(*inputs: Any, name: str | None = None) -> Operation:
    """An op that runs all of `inputs` (ops or tensors) before it completes."""
    graph = get_default_graph()
    ops: list[Operation] = []
    for item in inputs:
        items = item if isinstance(item, list | tuple) else [item]
        for i in items:
            element = graph.as_graph_element(i)
            ops.append(element.op if isinstance(element, Tensor) else element)
    return apply_op("NoOp", [], name=name or "group_deps", control_inputs=ops, graph=graph)


__all__ = [
    "constant",
    "fill",
    "group",
    "no_op",
    "ones",
    "ones_like",
    "placeholder",
    "placeholder_with_default",
    "random_normal",
    "random_uniform",
    "range",
    "set_random_seed",
    "truncated_normal",
    "zeros",
    "zeros_like",
]
