"""Reductions: sum, mean, max, min, prod, any, all, logsumexp, argmax and argmin.

Every op here is of kind REDUCTION and reduces some axes of its one input.
Sum, Mean, Max, Min, Prod, Any, All and LogSumExp carry two attributes:

- `axis`: a sorted tuple of distinct non-negative axes, normalized when the
  op is built (an empty tuple reduces nothing). Only for an input of unknown
  rank is it different: None means every axis, and a tuple holds the axes
  as the user gave them (maybe negative), checked when the op runs.
- `keepdims`: bool; reduced axes stay as dims of size 1.

ArgMax and ArgMin reduce one axis and carry `axis` (one int, normalized the
same way) and `output_type` (int32 or int64).

Results over an empty set of elements are the identity of the reduction, as
in TF: sum 0, prod 1, max -inf (the lowest int for ints), min +inf (the
highest int), any False, all True, logsumexp -inf; the mean of nothing is
NaN for floats and 0 for ints. Integer sums and products wrap around on
overflow; the integer mean is the sum divided by the count, truncated toward
zero, as in TF (NumPy would give a float). NaN propagates through every
reduction; argmax and argmin return the index of the first NaN, as NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from graphflow import dtypes, errors
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Tensor
from graphflow.ops.convert import convert_to_tensor, static_int, static_ints
from graphflow.ops.registry import REDUCTION, apply_op, defop, fail
from graphflow.shapes import Shape
from graphflow.source import user_location

NUMERIC = dtypes.NUMERIC_DTYPES
FLOATS = dtypes.FLOAT_DTYPES
BOOL = (dtypes.bool_,)


# -- axes ----------------------------------------------------------------------------------
def normalize_axes(
    axis: Any, rank: int | None, op_type: str, name: str | None, what: str = "axis"
) -> tuple[int, ...] | None:
    """The `axis` attribute of a reduction: sorted distinct non-negative axes.

    None means every axis: the tuple of all of them when the rank is known,
    None otherwise. Axes are checked against the rank when it is known, and
    kept as given (deduplicated) when it is not.

    Raises:
      InvalidArgumentError: an axis outside [-rank, rank), or not an int.
    """
    if axis is None:
        return None if rank is None else tuple(range(rank))
    given = static_ints(axis, what, op_type)
    if rank is None:
        return tuple(dict.fromkeys(given))
    for a in given:
        if not -rank <= a < rank:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    op_type,
                    name or op_type,
                    user_location(),
                    f"{what} out of range",
                    got=f"{what} {a} for an input of rank {rank}",
                    expected=f"axes in [{-rank}, {rank})",
                )
            )
    return tuple(sorted({a % rank for a in given}))


def normalize_axis(
    axis: Any, rank: int | None, op_type: str, name: str | None, what: str = "axis"
) -> int:
    """One axis, made non-negative when the rank is known.

    Raises:
      InvalidArgumentError: an axis outside [-rank, rank), or not an int.
    """
    a = static_int(axis, what, op_type)
    if rank is None:
        return a
    if not -rank <= a < rank:
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name or op_type,
                user_location(),
                f"{what} out of range",
                got=f"{what} {a} for an input of rank {rank}",
                expected=f"an axis in [{-rank}, {rank})",
            )
        )
    return a % rank


def runtime_axes(x: np.ndarray, axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The normalized axes of `x` (the attr is normalized already unless the rank was unknown).

    Raises:
      InvalidArgumentError: an axis outside the array's rank.
    """
    rank = x.ndim
    if axis is None:
        return tuple(range(rank))
    for a in axis:
        if not -rank <= a < rank:
            raise errors.InvalidArgumentError(
                f"reduction axis {a} is out of range for an input of rank {rank}; "
                f"expected axes in [{-rank}, {rank})"
            )
    return tuple(sorted({a % rank for a in axis}))


def reduced_shape(shape: Shape, axis: tuple[int, ...] | None, keepdims: bool) -> Shape:
    """The static shape of a reduction of `shape` over `axis` (None: every axis)."""
    if shape.rank is None:
        return Shape(()) if axis is None and not keepdims else Shape(None)
    rank = shape.rank
    axes = tuple(range(rank)) if axis is None else axis
    for a in axes:
        if not 0 <= a < rank:
            raise fail(
                "reduction axis out of range",
                got=f"axis {a} for shape {shape}",
                expected=f"axes in [0, {rank})",
            )
    dims = shape.as_list()
    if keepdims:
        return Shape(1 if i in axes else d for i, d in enumerate(dims))
    return Shape(d for i, d in enumerate(dims) if i not in axes)


def _reduction_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [reduced_shape(shapes[0], attrs["axis"], attrs["keepdims"])]


def _dtype_rule(allowed: tuple[DType, ...], hint: str = "") -> Callable:
    def rule(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
        if in_dtypes[0] not in allowed:
            raise fail(
                "unsupported dtype",
                got=in_dtypes[0].name,
                expected="one of " + ", ".join(a.name for a in allowed) + hint,
            )
        return [in_dtypes[0]]

    return rule


# -- references ----------------------------------------------------------------------------
def _count(x: np.ndarray, axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


def _sum(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def _prod(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    return np.asarray(np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def _mean(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    total = np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype))
    n = _count(x, axes)
    if x.dtype.kind == "f":
        # What np.mean computes (sum in the input's dtype, then one division),
        # without its warning for an empty slice: 0 / 0 is NaN.
        return np.asarray(total / x.dtype.type(n), dtype=x.dtype)
    if n == 0:
        return np.zeros_like(total)
    # Truncating division, as TF: floor division, plus one where a negative
    # sum left a remainder.
    q = total // n
    q = q + ((total - q * n != 0) & (total < 0))
    return np.asarray(q, dtype=x.dtype)


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> Any:
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _max(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    # `initial` makes the max of nothing the identity instead of an error.
    return np.asarray(np.max(x, axis=axes, keepdims=keepdims, initial=_lowest(x.dtype)))


def _min(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    return np.asarray(np.min(x, axis=axes, keepdims=keepdims, initial=_highest(x.dtype)))


def _any(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.asarray(np.any(x, axis=runtime_axes(x, axis), keepdims=keepdims))


def _all(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.asarray(np.all(x, axis=runtime_axes(x, axis), keepdims=keepdims))


def logsumexp_reference(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x))) shifted by the max, which is replaced by 0 where it is not finite.

    So a slice of all -inf (or an empty one) gives -inf, one holding +inf
    gives +inf, and one holding NaN gives NaN, as in TF and SciPy.
    """
    axes = runtime_axes(x, axis)
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    s = np.sum(np.exp(x - m), axis=axes, keepdims=True, dtype=x.dtype)
    out = np.log(s) + m
    if not keepdims:
        out = out.reshape([d for i, d in enumerate(out.shape) if i not in axes])
    return np.asarray(out, dtype=x.dtype)


# -- declarations --------------------------------------------------------------------------
def _reduction(
    name: str,
    reference: Callable,
    allowed: tuple[DType, ...],
    doc: str,
    differentiable: bool = True,
    hint: str = "",
) -> None:
    defop(
        name,
        REDUCTION,
        _reduction_shape,
        dtype=_dtype_rule(allowed, hint),
        reference=reference,
        differentiable=differentiable,
        unknown_rank_ok=True,
        doc=doc,
    )


_NUMBERS_HINT = " (cast bools to a number type first)"
_reduction("Sum", _sum, NUMERIC, "sum over axes; empty sum 0; ints wrap", hint=_NUMBERS_HINT)
_reduction(
    "Mean",
    _mean,
    NUMERIC,
    "mean over axes; int mean truncates toward 0 (TF); empty: NaN (0 for ints)",
    hint=_NUMBERS_HINT,
)
_reduction(
    "Max",
    _max,
    NUMERIC,
    "max over axes; NaN propagates; empty: -inf / lowest int",
    hint=_NUMBERS_HINT,
)
_reduction(
    "Min",
    _min,
    NUMERIC,
    "min over axes; NaN propagates; empty: +inf / highest int",
    hint=_NUMBERS_HINT,
)
_reduction(
    "Prod", _prod, NUMERIC, "product over axes; empty product 1; ints wrap", hint=_NUMBERS_HINT
)
_reduction("Any", _any, BOOL, "logical or over axes; empty: False", differentiable=False)
_reduction("All", _all, BOOL, "logical and over axes; empty: True", differentiable=False)
_reduction(
    "LogSumExp",
    logsumexp_reference,
    FLOATS,
    "log(sum(exp(x))) over axes, max-shifted; all -inf or empty: -inf",
)


def _arg_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    axis = attrs["axis"]
    if not 0 <= axis < shape.rank:
        raise fail(
            "axis out of range",
            got=f"axis {axis} for shape {shape}",
            expected=f"an axis in [0, {shape.rank})",
        )
    if shape[axis] == 0:
        raise fail(
            "cannot take the arg max/min of an empty axis",
            got=f"axis {axis} of shape {shape}",
            expected="a non-empty axis",
        )
    return [Shape(d for i, d in enumerate(shape.dims) if i != axis)]


def _arg_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    if attrs["output_type"] not in dtypes.INT_DTYPES:
        raise fail(
            "unsupported output_type", got=attrs["output_type"].name, expected="int32 or int64"
        )
    return [attrs["output_type"]]


def _arg_reference(fn: Callable) -> Callable:
    def reference(x: np.ndarray, axis: int, output_type: DType) -> np.ndarray:
        rank = x.ndim
        if not -rank <= axis < rank:
            raise errors.InvalidArgumentError(
                f"axis {axis} is out of range for an input of rank {rank}; "
                f"expected an axis in [{-rank}, {rank})"
            )
        if x.shape[axis] == 0:
            raise errors.InvalidArgumentError(
                f"reduction axis {axis % rank} is empty in an input of shape {x.shape}; "
                "expected a non-empty axis"
            )
        return np.asarray(fn(x, axis=axis), dtype=output_type.np)

    return reference


for _name, _fn, _what in (("ArgMax", np.argmax, "largest"), ("ArgMin", np.argmin, "smallest")):
    defop(
        _name,
        REDUCTION,
        _arg_shape,
        dtype=_arg_dtype,
        reference=_arg_reference(_fn),
        differentiable=False,
        doc=f"index of the {_what} element along axis (first one on ties; first NaN wins)",
    )


# -- the public functions ------------------------------------------------------------------
def _keepdims(keepdims: Any, keep_dims: Any, op_type: str, name: str | None) -> bool:
    if keepdims is not None and keep_dims is not None and bool(keepdims) != bool(keep_dims):
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name or op_type,
                user_location(),
                "keepdims and its deprecated alias keep_dims disagree",
                got=f"keepdims={keepdims}, keep_dims={keep_dims}",
                expected="only one of them",
            )
        )
    value = keepdims if keepdims is not None else keep_dims
    return bool(value) if value is not None else False


def _axis_arg(axis: Any, reduction_indices: Any, op_type: str, name: str | None) -> Any:
    if axis is not None and reduction_indices is not None:
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name or op_type,
                user_location(),
                "both axis and its deprecated alias reduction_indices are given",
                expected="only one of them",
            )
        )
    return axis if axis is not None else reduction_indices


def _reduce(op_type: str, api: str, default_name: str) -> Callable[..., Tensor]:
    def fn(
        input_tensor: Any,
        axis: Any = None,
        keepdims: bool | None = None,
        name: str | None = None,
        reduction_indices: Any = None,
        keep_dims: bool | None = None,
    ) -> Tensor:
        t = convert_to_tensor(input_tensor)
        if op_type == "LogSumExp" and t.dtype.is_integer:
            t = _cast(t, dtypes.float64)  # NumPy/SciPy: logsumexp of ints is float64
        axes = normalize_axes(
            _axis_arg(axis, reduction_indices, op_type, name), t.shape.rank, op_type, name
        )
        keep = _keepdims(keepdims, keep_dims, op_type, name)
        op = apply_op(op_type, [t], {"axis": axes, "keepdims": keep}, name=name or default_name)
        return op.outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"""{api}: reduces `input_tensor` along `axis` ({op_type} op).

    Args:
      input_tensor: the tensor to reduce.
      axis: an int or list of ints (negative counts from the end); None
        reduces every axis, [] none.
      keepdims: if true, reduced axes stay as dims of size 1 (default False).
      name: name of the op.
      reduction_indices: the deprecated name of `axis`.
      keep_dims: the deprecated name of `keepdims`.

    Returns:
      The reduced tensor, of the input's dtype.

    Raises:
      InvalidArgumentError: an axis out of range, or an unsupported dtype.
    """
    return fn


def _cast(t: Tensor, dtype: DType) -> Tensor:
    from graphflow.ops.math_ops import cast

    return cast(t, dtype)


reduce_sum = _reduce("Sum", "reduce_sum", "Sum")
reduce_mean = _reduce("Mean", "reduce_mean", "Mean")
reduce_max = _reduce("Max", "reduce_max", "Max")
reduce_min = _reduce("Min", "reduce_min", "Min")
reduce_prod = _reduce("Prod", "reduce_prod", "Prod")
reduce_any = _reduce("Any", "reduce_any", "Any")
reduce_all = _reduce("All", "reduce_all", "All")
reduce_logsumexp = _reduce("LogSumExp", "reduce_logsumexp", "ReduceLogSumExp")


def _arg(op_type: str, api: str) -> Callable[..., Tensor]:
    def fn(
        input: Any,
        axis: Any = None,
        name: str | None = None,
        dimension: Any = None,
        output_type: Any = dtypes.int64,
    ) -> Tensor:
        t = convert_to_tensor(input)
        if axis is not None and dimension is not None:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    op_type,
                    name or op_type,
                    user_location(),
                    "both axis and its deprecated alias dimension are given",
                    expected="only one of them",
                )
            )
        if axis is None:
            axis = dimension if dimension is not None else 0
        a = normalize_axis(axis, t.shape.rank, op_type, name)
        attrs = {"axis": a, "output_type": as_dtype(output_type)}
        return apply_op(op_type, [t], attrs, name=name or op_type).outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"""{api}: the index of the {"largest" if op_type == "ArgMax" else "smallest"}
    element along `axis` ({op_type} op).

    Ties give the first index; a NaN counts as the extreme, and the first NaN wins (as NumPy).

    Args:
      input: the tensor.
      axis: one int (default 0, as TF1); negative counts from the end.
      name: name of the op.
      dimension: the deprecated name of `axis`.
      output_type: int64 (default) or int32.

    Raises:
      InvalidArgumentError: an axis out of range or of size 0.
    """
    return fn


argmax = _arg("ArgMax", "argmax")
argmin = _arg("ArgMin", "argmin")
