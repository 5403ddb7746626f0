"""Array ops: reshaping, slicing, joining, splitting, gathering, padding and shape queries.

Kinds (read by the compiler): VIEW ops have one data input and no
arithmetic: element i of the output is the input element at an index
computed from i alone (reshape, transpose, slices, tile, broadcast_to).
Joins, splits, gather, one_hot and pad are STRUCTURED.

Static arguments (shapes, perms, axes, multiples, paddings, begin/size, the
index of `t[...]`) are attributes, so they must be known when the graph is
built: Python values, NumPy arrays or constant tensors. Negative axes are
normalized when the graph is built if the input's rank is known; an axis
out of range fails there, naming the op and the user's line.

References never return a view of an input: the session hands results to
the user and updates variables in place, so an alias could change a value
after it was produced.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import dtypes, errors
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Tensor
from graphflow.ops.convert import (
    _as_tensor_object,
    convert_to_tensor,
    static_int,
    static_ints,
    static_value,
)
from graphflow.ops.registry import (
    ELEMENTWISE,
    STRUCTURED,
    VIEW,
    InferenceError,
    apply_op,
    defop,
    fail,
)
from graphflow.shapes import Shape
from graphflow.source import user_location

INDEX_DTYPES = dtypes.INT_DTYPES
PAD_MODES = ("CONSTANT", "REFLECT", "SYMMETRIC")
_py_slice = builtins.slice  # this module defines its own `slice` (TF1's name)


# -- helpers for rules, references and public functions ------------------------------------
def _axis_in(axis: int, rank: int, what: str = "axis") -> int:
    """`axis` normalized to [0, rank), or an InferenceError naming the valid range."""
    if not -rank <= axis < rank:
        raise fail(
            f"{what} {axis} is out of range",
            got=f"{what} {axis} for a tensor of rank {rank}",
            expected=f"{what} in [{-rank}, {rank})" if rank else "a tensor of rank >= 1",
        )
    return axis + rank if axis < 0 else axis


def _insert_axis_in(axis: int, rank: int) -> int:
    """A new axis position (expand_dims, stack) normalized to [0, rank]."""
    if not -rank - 1 <= axis <= rank:
        raise fail(
            f"axis {axis} is out of range",
            got=f"axis {axis} for a result of rank {rank + 1}",
            expected=f"axis in [{-rank - 1}, {rank}]",
        )
    return axis + rank + 1 if axis < 0 else axis


def _canonical_axis(axis: int, rank: int | None, insert: bool = False) -> int:
    """Negative axes made positive when the rank is known; out-of-range axes stay for the rule."""
    if rank is None or axis >= 0:
        return axis
    size = rank + 1 if insert else rank
    return axis + size if axis >= -size else axis


def _same_dtypes(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    first = in_dtypes[0]
    if any(d != first for d in in_dtypes):
        raise fail(
            "all values must have one dtype",
            got=", ".join(d.name for d in in_dtypes),
            expected="equal dtypes (cast with gf.cast first)",
        )
    return [first]


def _run_error(what: str, got: str, expected: str) -> errors.InvalidArgumentError:
    """An error found by a reference at run time; the interpreter adds the op and its location."""
    return errors.InvalidArgumentError(f"{what}; got {got}; expected {expected}")


def _error(
    op_type: str, name: str | None, what: str, got: str | None = None, expected: str | None = None
) -> errors.InvalidArgumentError:
    """An error found by a public function, in the one message format."""
    return errors.InvalidArgumentError(
        errors.op_message(op_type, name or op_type, user_location(), what, got, expected)
    )


def _convert(
    value: Any, op_type: str, name: str | None, what: str = "the input", dtype: Any = None
) -> Tensor:
    """convert_to_tensor, with a failure reported against the op being built."""
    try:
        return convert_to_tensor(value, dtype=dtype)
    except errors.InvalidArgumentError as e:
        raise _error(op_type, name, f"cannot use {what}: {e.message}") from None


def _static_int_list(value: Any, what: str, op_type: str) -> tuple[int, ...]:
    """Like static_ints, but also takes a fully known Shape and lists mixing ints and constants."""
    if isinstance(value, Shape):
        if not value.is_fully_defined:
            raise errors.UnimplementedError(
                errors.op_message(
                    op_type,
                    op_type,
                    user_location(),
                    f"{what} must be known when the graph is built",
                    got=f"the shape {value}",
                    expected="a shape without unknown dims",
                )
            )
        return tuple(value.as_list())  # type: ignore[arg-type]
    if isinstance(value, list | tuple) and any(_as_tensor_object(v) is not None for v in value):
        return tuple(static_int(v, f"an element of {what}", op_type) for v in value)
    return static_ints(value, what, op_type)


def _output(op_type: str, inputs: list[Tensor], attrs: dict[str, Any], name: str | None) -> Tensor:
    return apply_op(op_type, inputs, attrs, name=name or op_type).outputs[0]


# -- Reshape ---------------------------------------------------------------------------------
def _reshape_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    (source,) = shapes
    target = list(attrs["shape"])
    if any(d < -1 for d in target) or target.count(-1) > 1:
        raise fail(
            "invalid target shape",
            got=str(target),
            expected="dims >= 0 and at most one -1",
        )
    in_dims = source.dims or ()
    known_in = math.prod([d for d in in_dims if d is not None])
    known_out = math.prod([d for d in target if d != -1])
    defined = source.is_fully_defined
    what = f"cannot reshape a tensor of shape {source} to shape {target}"
    if -1 not in target:
        # With None dims the input has known_in * (unknowns) elements.
        fits = (
            known_in == known_out
            if defined
            else (known_out % known_in == 0 if known_in else known_out == 0)
        )
        if not fits:
            raise fail(
                what,
                got=f"{known_in if defined else 'a multiple of ' + str(known_in)} elements",
                expected=f"{known_out} elements",
            )
        return [Shape(target)]
    if known_out == 0:
        raise fail(
            what,
            got="a -1 next to a 0 dim",
            expected="a shape whose -1 can be inferred (no 0 dims next to -1)",
        )
    index = target.index(-1)
    if defined:
        if known_in % known_out:
            raise fail(
                what,
                got=f"{known_in} elements",
                expected=f"a multiple of {known_out} elements",
            )
        target[index] = known_in // known_out
    elif known_in == 0:
        target[index] = 0
    else:
        target[index] = None
    return [Shape(target)]


def _reshape_reference(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.reshape(x, shape).copy()
    except ValueError:
        raise _run_error(
            "cannot reshape",
            got=f"a tensor of shape {x.shape} ({x.size} elements)",
            expected=f"a size that fits shape {list(shape)}",
        ) from None


defop(
    "Reshape",
    VIEW,
    _reshape_shape,
    reference=_reshape_reference,
    doc="the same elements in a new shape (one dim may be -1)",
)


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Tensor:
    """Gives `tensor`'s elements, in row-major order, the shape `shape`.

    Args:
      tensor: a Tensor or data.
      shape: a list of ints (one may be -1: inferred from the size), a
        fully known Shape, or a constant 1-D int tensor.
      name: name of the op (default "Reshape").

    Returns:
      A Tensor of `tensor`'s dtype.

    Raises:
      InvalidArgumentError: sizes that do not match, when known at construction.
      UnimplementedError: a shape computed at run time.
    """
    t = _convert(tensor, "Reshape", name)
    target = _static_int_list(shape, "shape", "Reshape")
    return _output("Reshape", [t], {"shape": target}, name)


# -- Transpose -------------------------------------------------------------------------------
def _transpose_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = shapes[0].dims
    assert dims is not None
    perm = attrs["perm"]
    if perm is None:
        return [Shape(dims[::-1])]
    rank = len(dims)
    normalized = [p + rank if -rank <= p < 0 else p for p in perm]
    if sorted(normalized) != list(range(rank)):
        raise fail(
            "perm is not a permutation of the input's axes",
            got=f"perm {list(perm)} for a tensor of rank {rank}",
            expected=f"a permutation of {list(range(rank))}",
        )
    return [Shape([dims[p] for p in normalized])]


def _transpose_reference(x: np.ndarray, perm: tuple[int, ...] | None) -> np.ndarray:
    try:
        return np.transpose(x, perm).copy()
    except (ValueError, np.exceptions.AxisError):
        raise _run_error(
            "perm does not fit the input",
            got=f"perm {perm} for shape {x.shape}",
            expected=f"a permutation of {list(range(x.ndim))}",
        ) from None


defop(
    "Transpose",
    VIEW,
    _transpose_shape,
    reference=_transpose_reference,
    doc="permutes the axes (reverses them by default)",
)


def transpose(a: Any, perm: Any = None, name: str | None = None, conjugate: bool = False) -> Tensor:
    """Permutes the axes of `a`: output axis i is input axis perm[i].

    Args:
      a: a Tensor or data.
      perm: a permutation of the axes (negative entries count from the
        end); default: the axes reversed.
      name: name of the op (default "Transpose").
      conjugate: accepted for TF1 compatibility; graphflow has no complex dtypes.

    Raises:
      InvalidArgumentError: `perm` is not a permutation of the axes.
    """
    t = _convert(a, "Transpose", name)
    rank = t.shape.rank
    if perm is None:
        perm_attr = None if rank is None else tuple(range(rank - 1, -1, -1))
    else:
        perm_attr = tuple(
            _canonical_axis(p, rank) for p in _static_int_list(perm, "perm", "Transpose")
        )
    return _output("Transpose", [t], {"perm": perm_attr}, name)


# -- ExpandDims and Squeeze ------------------------------------------------------------------
def _expand_dims_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = list(shapes[0].dims or ())
    dims.insert(_insert_axis_in(attrs["axis"], len(dims)), 1)
    return [Shape(dims)]


def _expand_dims_reference(x: np.ndarray, axis: int) -> np.ndarray:
    return np.expand_dims(x, axis).copy()


defop(
    "ExpandDims",
    VIEW,
    _expand_dims_shape,
    reference=_expand_dims_reference,
    doc="inserts a dim of size 1 at axis",
)


def expand_dims(
    input: Any,
    axis: Any = None,
    name: str | None = None,
    dim: Any = None,
) -> Tensor:
    """Inserts a dim of size 1 at `axis` (in [-rank - 1, rank]).

    Args:
      input: a Tensor or data.
      axis: where the new dim goes; negative values count from the end.
      name: name of the op (default "ExpandDims").
      dim: TF1's deprecated name for `axis`.

    Raises:
      InvalidArgumentError: no axis, or an axis out of range.
    """
    if axis is None and dim is None:
        raise _error(
            "ExpandDims", name, "expand_dims needs an axis", got="axis=None", expected="an int axis"
        )
    if axis is not None and dim is not None:
        raise _error(
            "ExpandDims",
            name,
            "give axis or dim, not both",
            got=f"axis={axis}, dim={dim}",
            expected="only axis",
        )
    t = _convert(input, "ExpandDims", name)
    a = static_int(axis if axis is not None else dim, "axis", "ExpandDims")
    return _output("ExpandDims", [t], {"axis": _canonical_axis(a, t.shape.rank, insert=True)}, name)


def _squeeze_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    dims = shape.dims
    assert dims is not None
    axes = attrs["axis"]
    if axes is None:
        # Which dims are 1 is only known at run time if some are None.
        return [Shape([d for d in dims if d != 1]) if shape.is_fully_defined else Shape(None)]
    drop = set()
    for axis in axes:
        a = _axis_in(axis, len(dims))
        if dims[a] not in (1, None):
            raise fail(
                f"cannot squeeze dim {a} of size {dims[a]}",
                got=f"axis {axis} of a tensor of shape {shape}",
                expected="axes of dims of size 1",
            )
        drop.add(a)
    return [Shape([d for i, d in enumerate(dims) if i not in drop])]


def _squeeze_reference(x: np.ndarray, axis: tuple[int, ...] | None) -> np.ndarray:
    if axis is not None:
        for a in axis:
            if not -x.ndim <= a < x.ndim or x.shape[a] != 1:
                raise _run_error(
                    "cannot squeeze a dim whose size is not 1",
                    got=f"axis {a} of a tensor of shape {x.shape}",
                    expected="dims of size 1",
                )
    return np.squeeze(x, axis=axis).copy()


defop(
    "Squeeze",
    VIEW,
    _squeeze_shape,
    reference=_squeeze_reference,
    doc="removes dims of size 1 (all known ones, or the given axes)",
)


def squeeze(
    input: Any,
    axis: Any = None,
    name: str | None = None,
    squeeze_dims: Any = None,
) -> Tensor:
    """Removes dims of size 1.

    Args:
      input: a Tensor or data.
      axis: an int or a list of ints: the dims to remove (each must be 1).
        None removes every dim known to be 1 when the graph is built; dims
        of unknown size (None) stay.
      name: name of the op (default "Squeeze").
      squeeze_dims: TF1's deprecated name for `axis`.

    Raises:
      InvalidArgumentError: an axis out of range, or of a dim known not to be 1.
    """
    if axis is not None and squeeze_dims is not None:
        raise _error(
            "Squeeze",
            name,
            "give axis or squeeze_dims, not both",
            got=f"axis={axis}, squeeze_dims={squeeze_dims}",
            expected="only axis",
        )
    if axis is None:
        axis = squeeze_dims
    t = _convert(input, "Squeeze", name)
    rank = t.shape.rank
    if axis is None:
        axes = None if rank is None else tuple(i for i, d in enumerate(t.shape) if d == 1)
    else:
        axes = tuple(_canonical_axis(a, rank) for a in _static_int_list(axis, "axis", "Squeeze"))
        axes = tuple(sorted(set(axes)))
    return _output("Squeeze", [t], {"axis": axes}, name)


# -- ConcatV2, Pack, Unpack ------------------------------------------------------------------
def _merged_dims(shapes: list[Shape], what: str) -> list[int | None]:
    """The dims all `shapes` agree on (None where none knows); the ranks must be equal."""
    ranks = {s.rank for s in shapes}
    if len(ranks) > 1:
        raise fail(
            f"{what}: the values have different ranks",
            got="shapes " + ", ".join(str(s) for s in shapes),
            expected="values of one rank",
        )
    merged = shapes[0]
    for s in shapes[1:]:
        if not merged.is_compatible_with(s):
            raise fail(
                f"{what}: the values have different shapes",
                got="shapes " + ", ".join(str(s) for s in shapes),
                expected="values of one shape",
            )
        merged = merged.merge_with(s)
    return list(merged.dims or ())


def _concat_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    rank = shapes[0].rank
    assert rank is not None
    if rank == 0:
        raise fail(
            "cannot concatenate scalars",
            got="values of shape ()",
            expected="values of rank >= 1 (use gf.stack for scalars)",
        )
    axis = _axis_in(attrs["axis"], rank)
    # Compare every dim but the axis, which is summed.
    others = [Shape((*s.dims[:axis], 1, *s.dims[axis + 1 :])) for s in shapes]  # type: ignore
    try:
        dims = _merged_dims(others, "concat")
    except InferenceError:
        raise fail(
            "the values have different shapes",
            got="shapes " + ", ".join(str(s) for s in shapes),
            expected=f"shapes equal in every dim but the axis {axis}",
        ) from None
    sizes = [s.dims[axis] for s in shapes]  # type: ignore[index]
    dims[axis] = None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    return [Shape(dims)]


def _concat_reference(*values: np.ndarray, axis: int) -> np.ndarray:
    try:
        return np.concatenate(values, axis=axis)
    except ValueError:
        raise _run_error(
            "the values do not fit together",
            got="shapes " + ", ".join(str(v.shape) for v in values),
            expected=f"shapes equal except on axis {axis}",
        ) from None


defop(
    "ConcatV2",
    STRUCTURED,
    _concat_shape,
    dtype=_same_dtypes,
    reference=_concat_reference,
    doc="joins tensors along an existing axis",
)


def _values_of_one_dtype(values: Any, op_type: str, name: str | None) -> list[Tensor]:
    """Tensors for `values`; Python data takes the dtype of the first Tensor, as in TF1."""
    if not isinstance(values, list | tuple):
        values = [values]
    if not values:
        raise _error(
            op_type,
            name,
            "no values",
            got="an empty list",
            expected="a list of at least one tensor",
        )
    dtype = next((t.dtype for t in map(_as_tensor_object, values) if t is not None), None)
    return [
        _convert(v, op_type, name, "a value", None if _as_tensor_object(v) is not None else dtype)
        for v in values
    ]


def concat(values: Any, axis: Any, name: str | None = None) -> Tensor:
    """Joins `values` along the existing dim `axis`.

    Args:
      values: a list of tensors of one dtype and rank, equal in all dims but `axis`.
      axis: the dim to join along; negative values count from the end.
      name: name of the op (default "ConcatV2").

    Raises:
      InvalidArgumentError: no values, dtypes or shapes that differ, an axis out of range.
    """
    tensors = _values_of_one_dtype(values, "ConcatV2", name)
    a = static_int(axis, "axis", "ConcatV2")
    return _output("ConcatV2", tensors, {"axis": _canonical_axis(a, tensors[0].shape.rank)}, name)


def _pack_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = _merged_dims(shapes, "stack")
    dims.insert(_insert_axis_in(attrs["axis"], len(dims)), len(shapes))
    return [Shape(dims)]


def _pack_reference(*values: np.ndarray, axis: int) -> np.ndarray:
    try:
        return np.stack(values, axis=axis)
    except ValueError:
        raise _run_error(
            "the values have different shapes",
            got="shapes " + ", ".join(str(v.shape) for v in values),
            expected="one shape",
        ) from None


defop(
    "Pack",
    STRUCTURED,
    _pack_shape,
    dtype=_same_dtypes,
    reference=_pack_reference,
    doc="stacks tensors of one shape along a new axis",
)


def stack(values: Any, axis: Any = 0, name: str | None = None) -> Tensor:
    """Stacks tensors of one shape and dtype along a new dim `axis` (in [-rank - 1, rank]).

    Raises:
      InvalidArgumentError: no values, dtypes or shapes that differ, an axis out of range.
    """
    tensors = _values_of_one_dtype(values, "Pack", name)
    a = static_int(axis, "axis", "Pack")
    attrs = {"axis": _canonical_axis(a, tensors[0].shape.rank, insert=True)}
    return _output("Pack", tensors, attrs, name)


def _unpack_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = list(shapes[0].dims or ())
    axis = _axis_in(attrs["axis"], len(dims))
    num = attrs["num"]
    if dims[axis] not in (None, num):
        raise fail(
            f"cannot unstack dim {axis} of size {dims[axis]} into {num} tensors",
            got=f"num={num} for shape {shapes[0]}",
            expected=f"num={dims[axis]}",
        )
    del dims[axis]
    return [Shape(dims)] * num


def _unpack_reference(value: np.ndarray, num: int, axis: int) -> Any:
    if value.shape[axis] != num:
        raise _run_error(
            "the dim to unstack has another size",
            got=f"shape {value.shape}",
            expected=f"{num} along axis {axis}",
        )
    parts = tuple(np.take(value, i, axis=axis) for i in range(num))
    return parts[0] if num == 1 else parts


def _multi_dtype(count_attr: str) -> Any:
    def rule(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
        return [in_dtypes[0]] * attrs[count_attr]

    return rule


defop(
    "Unpack",
    STRUCTURED,
    _unpack_shape,
    dtype=_multi_dtype("num"),
    reference=_unpack_reference,
    num_outputs=lambda attrs: attrs["num"],
    doc="splits a tensor into the slices along an axis",
)


def unstack(value: Any, num: Any = None, axis: Any = 0, name: str | None = None) -> list[Tensor]:
    """The slices of `value` along `axis`, as a list of `num` tensors of rank - 1.

    Raises:
      InvalidArgumentError: `num` not given and the dim's size unknown, or an axis out of range.
    """
    t = _convert(value, "Unpack", name)
    a = _canonical_axis(static_int(axis, "axis", "Unpack"), t.shape.rank)
    if num is None:
        size = (
            t.shape[a] if t.shape.rank is not None and -t.shape.rank <= a < t.shape.rank else None
        )
        if size is None:
            raise _error(
                "Unpack",
                name,
                "cannot infer num: the size of the axis is unknown",
                got=f"a tensor of shape {t.shape}, axis {axis}",
                expected="num= or a known size",
            )
        num = size
    n = static_int(num, "num", "Unpack")
    if n < 0:
        raise _error("Unpack", name, "negative num", got=str(n), expected="num >= 0")
    return list(apply_op("Unpack", [t], {"num": n, "axis": a}, name=name or "Unpack").outputs)


# -- Split -----------------------------------------------------------------------------------
def _split_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    dims = list(shape.dims or ())
    axis = _axis_in(attrs["axis"], len(dims))
    size = dims[axis]
    count, sizes = attrs["num_split"], attrs["size_splits"]

    def with_size(n: int | None) -> Shape:
        return Shape([*dims[:axis], n, *dims[axis + 1 :]])

    if sizes is None:
        if count <= 0:
            raise fail("cannot split into fewer than 1 part", got=str(count), expected=">= 1")
        if size is not None and size % count:
            raise fail(
                f"cannot split dim {axis} of size {size} into {count} equal parts",
                got=f"a tensor of shape {shape}",
                expected=f"a size divisible by {count}",
            )
        return [with_size(None if size is None else size // count)] * count
    if len(sizes) != count or any(s < -1 for s in sizes) or list(sizes).count(-1) > 1:
        raise fail(
            "invalid size_splits", got=str(list(sizes)), expected="sizes >= 0 and at most one -1"
        )
    known = sum(s for s in sizes if s != -1)
    if size is not None:
        rest = size - known
        if (-1 in sizes and rest < 0) or (-1 not in sizes and rest != 0):
            raise fail(
                f"size_splits do not add up to the size of dim {axis}",
                got=f"size_splits {list(sizes)} for a tensor of shape {shape}",
                expected=f"sizes summing to {size}",
            )
        return [with_size(rest if s == -1 else s) for s in sizes]
    return [with_size(None if s == -1 else s) for s in sizes]


def _split_reference(
    value: np.ndarray, axis: int, num_split: int, size_splits: tuple[int, ...] | None
) -> Any:
    size = value.shape[axis]
    if size_splits is None:
        if size % num_split:
            raise _run_error(
                f"cannot split into {num_split} equal parts",
                got=f"shape {value.shape}",
                expected=f"axis {axis} divisible",
            )
        sizes = [size // num_split] * num_split
    else:
        known = sum(s for s in size_splits if s != -1)
        sizes = [size - known if s == -1 else s for s in size_splits]
        if sum(sizes) != size or min(sizes, default=0) < 0:
            raise _run_error(
                "size_splits do not add up",
                got=f"shape {value.shape}",
                expected=f"sizes {list(size_splits)} along axis {axis}",
            )
    offsets = np.cumsum([0, *sizes])
    index = [_py_slice(None)] * value.ndim
    parts = []
    for begin, end in itertools.pairwise(offsets):
        index[axis] = _py_slice(int(begin), int(end))
        parts.append(value[tuple(index)].copy())
    return parts[0] if len(parts) == 1 else tuple(parts)


defop(
    "Split",
    STRUCTURED,
    _split_shape,
    dtype=_multi_dtype("num_split"),
    reference=_split_reference,
    num_outputs=lambda attrs: attrs["num_split"],
    doc="splits along an axis into equal parts or given sizes (one may be -1)",
)


def split(
    value: Any, num_or_size_splits: Any, axis: Any = 0, num: Any = None, name: str | None = None
) -> list[Tensor]:
    """Splits `value` along `axis` into a list of tensors.

    Args:
      value: a Tensor or data.
      num_or_size_splits: an int (that many equal parts), or a list of
        sizes, one of which may be -1 (the rest of the dim).
      axis: the dim to split; negative values count from the end.
      num: the number of outputs, only checked against `num_or_size_splits`.
      name: name of the op (default "Split").

    Raises:
      InvalidArgumentError: sizes that do not divide or add up to the dim, when known.
    """
    t = _convert(value, "Split", name)
    a = _canonical_axis(static_int(axis, "axis", "Split"), t.shape.rank)
    splits = static_value(num_or_size_splits, "num_or_size_splits", "Split")
    if splits.ndim == 0:
        count, sizes = static_int(splits, "num_or_size_splits", "Split"), None
    else:
        sizes = static_ints(splits, "num_or_size_splits", "Split")
        count = len(sizes)
    if num is not None and static_int(num, "num", "Split") != count:
        raise _error(
            "Split",
            name,
            "num does not match num_or_size_splits",
            got=f"num={num}",
            expected=f"num={count}",
        )
    attrs = {"axis": a, "num_split": count, "size_splits": sizes}
    return list(apply_op("Split", [t], attrs, name=name or "Split").outputs)


# -- Slice -----------------------------------------------------------------------------------
def _slice_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    dims = shape.dims
    assert dims is not None
    begin, size = attrs["begin"], attrs["size"]
    if len(begin) != len(dims) or len(size) != len(dims):
        raise fail(
            "begin and size must have one entry per dim",
            got=f"begin {list(begin)}, size {list(size)} for a tensor of rank {len(dims)}",
            expected=f"{len(dims)} entries each",
        )
    out: list[int | None] = []
    for i, (d, b, s) in enumerate(zip(dims, begin, size)):
        if b < 0 or s < -1 or (d is not None and (b > d or (s != -1 and b + s > d))):
            raise fail(
                f"slice out of range in dim {i}",
                got=f"begin {list(begin)}, size {list(size)} for a tensor of shape {shape}",
                expected="0 <= begin[i] <= begin[i] + size[i] <= dim i (size -1: to the end)",
            )
        out.append((None if d is None else d - b) if s == -1 else s)
    return [Shape(out)]


def _slice_reference(x: np.ndarray, begin: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
    index = []
    if not len(begin) == len(size) == x.ndim:
        raise _run_error(
            "begin and size must have one entry per dim",
            got=f"begin {list(begin)}, size {list(size)}",
            expected=f"{x.ndim} entries each for shape {x.shape}",
        )
    for d, b, s in zip(x.shape, begin, size):
        end = d if s == -1 else b + s
        if b > d or end > d:
            raise _run_error(
                "slice out of range",
                got=f"begin {list(begin)}, size {list(size)}",
                expected=f"a slice inside shape {x.shape}",
            )
        index.append(_py_slice(b, end))
    return x[tuple(index)].copy()


defop(
    "Slice",
    VIEW,
    _slice_shape,
    reference=_slice_reference,
    doc="the block of `size` starting at `begin` (size -1: to the end)",
)


def slice(input_: Any, begin: Any, size: Any, name: str | None = None) -> Tensor:
    """The block of `input_` of shape `size` starting at `begin`.

    Args:
      input_: a Tensor or data.
      begin: the start in each dim (>= 0).
      size: the size in each dim; -1 means everything from begin to the end.
      name: name of the op (default "Slice").

    Raises:
      InvalidArgumentError: a block outside the tensor, or begin/size of the wrong length.
    """
    t = _convert(input_, "Slice", name)
    attrs = {
        "begin": _static_int_list(begin, "begin", "Slice"),
        "size": _static_int_list(size, "size", "Slice"),
    }
    return _output("Slice", [t], attrs, name)


# -- StridedSlice: t[...] ---------------------------------------------------------------------
# The attr `spec` is NumPy's basic index in a hashable form, one entry per item of the key:
#   ("int", i)  ("slice", start, stop, step)  ("newaxis",)  ("ellipsis",)
# with None for omitted slice bounds. Both strided_slice and t[...] produce it.
_FULL_SLICE = ("slice", None, None, None)


def _expand_spec(spec: tuple[tuple[Any, ...], ...], rank: int) -> list[tuple[Any, ...]]:
    """`spec` with its ellipsis (explicit or implied at the end) replaced by full slices."""
    ellipses = sum(1 for e in spec if e[0] == "ellipsis")
    if ellipses > 1:
        raise fail(
            "an index can have only one ellipsis",
            got=f"{ellipses} ellipses",
            expected="at most one '...'",
        )
    used = sum(1 for e in spec if e[0] in ("int", "slice"))
    if used > rank:
        raise fail(
            "too many indices",
            got=f"{used} indices for a tensor of rank {rank}",
            expected=f"at most {rank}",
        )
    fill = [_FULL_SLICE] * (rank - used)
    if ellipses == 0:
        return [*spec, *fill]
    at = next(i for i, e in enumerate(spec) if e[0] == "ellipsis")
    return [*spec[:at], *fill, *spec[at + 1 :]]


def _strided_slice_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    dims = shape.dims
    assert dims is not None
    out: list[int | None] = []
    axis = 0
    for entry in _expand_spec(attrs["spec"], len(dims)):
        kind = entry[0]
        if kind == "newaxis":
            out.append(1)
            continue
        d = dims[axis]
        if kind == "int":
            i = entry[1]
            if d is not None and not -d <= i < d:
                raise fail(
                    f"index {i} is out of range for dim {axis} of size {d}",
                    got=f"index {i} into a tensor of shape {shape}",
                    expected=f"an index in [{-d}, {d})",
                )
        else:
            start, stop, step = entry[1:]
            if step == 0:
                raise fail(
                    "slice step cannot be 0",
                    got=f"a step of 0 in dim {axis}",
                    expected="a non-zero step",
                )
            out.append(None if d is None else len(range(*_py_slice(start, stop, step).indices(d))))
        axis += 1
    return [Shape(out)]


def _numpy_index(spec: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    index: list[Any] = []
    for entry in spec:
        kind = entry[0]
        if kind == "int":
            index.append(entry[1])
        elif kind == "slice":
            index.append(_py_slice(*entry[1:]))
        elif kind == "newaxis":
            index.append(None)
        else:
            index.append(Ellipsis)
    return tuple(index)


def _strided_slice_reference(x: np.ndarray, spec: tuple[tuple[Any, ...], ...]) -> np.ndarray:
    try:
        expanded = _expand_spec(spec, x.ndim)
    except InferenceError as e:
        raise _run_error(e.what, e.got or "", e.expected or "") from None
    axis = 0
    for entry in expanded:
        if entry[0] == "int" and not -x.shape[axis] <= entry[1] < x.shape[axis]:
            raise _run_error(
                f"index {entry[1]} is out of range",
                got=f"index {entry[1]} into dim {axis} of a tensor of shape {x.shape}",
                expected=f"an index in [{-x.shape[axis]}, {x.shape[axis]})",
            )
        axis += entry[0] in ("int", "slice")
    return np.array(x[_numpy_index(spec)], copy=True)


defop(
    "StridedSlice",
    VIEW,
    _strided_slice_shape,
    reference=_strided_slice_reference,
    doc="NumPy basic indexing: ints, slices with steps, newaxis, ellipsis",
)


def _bit(mask: int, i: int) -> bool:
    return bool((mask >> i) & 1)


def strided_slice(
    input_: Any,
    begin: Any,
    end: Any,
    strides: Any = None,
    begin_mask: int = 0,
    end_mask: int = 0,
    ellipsis_mask: int = 0,
    new_axis_mask: int = 0,
    shrink_axis_mask: int = 0,
    name: str | None = None,
) -> Tensor:
    """TF's strided slice: entry i of begin/end/strides is one item of a NumPy index.

    Bit i of the masks makes item i: `...` (ellipsis_mask), a new axis
    (new_axis_mask), the int begin[i] (shrink_axis_mask), or a slice whose
    start (begin_mask) or stop (end_mask) is omitted.

    Raises:
      InvalidArgumentError: begin/end/strides of different lengths, a stride
        of 0, an index out of range, more than one ellipsis.
    """
    t = _convert(input_, "StridedSlice", name)
    b = _static_int_list(begin, "begin", "StridedSlice")
    e = _static_int_list(end, "end", "StridedSlice")
    s = (1,) * len(b) if strides is None else _static_int_list(strides, "strides", "StridedSlice")
    if not len(b) == len(e) == len(s):
        raise _error(
            "StridedSlice",
            name,
            "begin, end and strides must have one length",
            got=f"begin {list(b)}, end {list(e)}, strides {list(s)}",
            expected="lists of equal length",
        )
    spec: list[tuple[Any, ...]] = []
    for i in range(len(b)):
        if _bit(ellipsis_mask, i):
            spec.append(("ellipsis",))
        elif _bit(new_axis_mask, i):
            spec.append(("newaxis",))
        elif _bit(shrink_axis_mask, i):
            spec.append(("int", b[i]))
        else:
            start = None if _bit(begin_mask, i) else b[i]
            stop = None if _bit(end_mask, i) else e[i]
            spec.append(("slice", start, stop, s[i]))
    return _output("StridedSlice", [t], {"spec": tuple(spec)}, name)


def _index_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        raise errors.InvalidArgumentError(
            errors.op_message(
                "StridedSlice",
                "strided_slice",
                user_location(),
                f"unsupported {what}",
                got=repr(value),
                expected="an int or None",
            )
        )
    if isinstance(value, int | np.integer):
        return int(value)
    if _as_tensor_object(value) is None and not isinstance(value, np.ndarray):
        raise errors.InvalidArgumentError(
            errors.op_message(
                "StridedSlice",
                "strided_slice",
                user_location(),
                f"unsupported {what}",
                got=f"{value!r} ({type(value).__name__})",
                expected="an int, a slice, None (newaxis) or ...",
            )
        )
    return static_int(value, what, "StridedSlice")


def getitem(tensor: Tensor, key: Any) -> Tensor:
    """`tensor[key]` with NumPy's basic indexing (Tensor.__getitem__).

    The key may hold ints (negative count from the end), slices with any
    steps, None/np.newaxis, one Ellipsis, and constant scalar int tensors.

    Raises:
      InvalidArgumentError: an index out of range of a known dim, too many
        indices, a step of 0, or an unsupported key (lists, bools, floats).
      UnimplementedError: an index computed at run time (use gf.gather).
    """
    items = key if isinstance(key, tuple) else (key,)
    spec: list[tuple[Any, ...]] = []
    for item in items:
        if item is None:
            spec.append(("newaxis",))
        elif item is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(item, _py_slice):
            spec.append(
                (
                    "slice",
                    _index_int(item.start, "slice start"),
                    _index_int(item.stop, "slice stop"),
                    _index_int(item.step, "slice step"),
                )
            )
        elif isinstance(item, list | tuple):
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "StridedSlice",
                    "strided_slice",
                    user_location(),
                    "indexing with a list",
                    got=repr(item),
                    expected="ints, slices, None or ... (use gf.gather for lists)",
                )
            )
        else:
            spec.append(("int", _index_int(item, "index")))
    return _output("StridedSlice", [tensor], {"spec": tuple(spec)}, "strided_slice")


# -- GatherV2 --------------------------------------------------------------------------------
def _gather_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    params, indices = shapes
    dims = params.dims
    assert dims is not None and indices.dims is not None
    axis = _axis_in(attrs["axis"], len(dims))
    return [Shape(dims[:axis] + indices.dims + dims[axis + 1 :])]


def _gather_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    if in_dtypes[1] not in INDEX_DTYPES:
        raise fail(
            "indices must be integers",
            got=f"indices of dtype {in_dtypes[1].name}",
            expected="int32 or int64",
        )
    return [in_dtypes[0]]


def _gather_reference(
    params: np.ndarray, indices: np.ndarray, axis: int, batch_dims: int
) -> np.ndarray:
    size = params.shape[axis]
    bad = (indices < 0) | (indices >= size)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        position = "[" + ", ".join(map(str, where)) + "]" if where else ""
        raise _run_error(
            "index out of range",
            got=f"indices{position} = {indices[where]}",
            expected=f"indices in [0, {size}) (dim {axis} of params of shape {params.shape})",
        )
    return np.take(params, indices, axis=axis)


defop(
    "GatherV2",
    STRUCTURED,
    _gather_shape,
    dtype=_gather_dtype,
    reference=_gather_reference,
    doc="the slices of params at indices along axis",
)


def gather(
    params: Any,
    indices: Any,
    validate_indices: Any = None,
    name: str | None = None,
    axis: Any = None,
    batch_dims: int = 0,
) -> Tensor:
    """Gathers the slices of `params` along `axis` at `indices`.

    Args:
      params: a Tensor or data of rank >= 1.
      indices: an int32 or int64 tensor; each in [0, params.shape[axis]).
      validate_indices: ignored (indices are always checked), as in TF1.
      name: name of the op (default "GatherV2").
      axis: the dim of params to gather from (default 0).
      batch_dims: only 0 is supported.

    Returns:
      A tensor of params' dtype and shape
      params.shape[:axis] + indices.shape + params.shape[axis + 1:].

    Raises:
      InvalidArgumentError: non-integer indices, an axis out of range; at run
        time, an index out of range (negative indices are out of range).
      UnimplementedError: batch_dims other than 0.
    """
    p = _convert(params, "GatherV2", name, "params")
    i = _convert(indices, "GatherV2", name, "indices")
    if static_int(batch_dims, "batch_dims", "GatherV2") != 0:
        raise errors.UnimplementedError(
            errors.op_message(
                "GatherV2",
                name or "GatherV2",
                user_location(),
                "batch_dims is not supported",
                got=f"batch_dims={batch_dims}",
                expected="batch_dims=0",
            )
        )
    a = 0 if axis is None else static_int(axis, "axis", "GatherV2")
    attrs = {"axis": _canonical_axis(a, p.shape.rank), "batch_dims": 0}
    return _output("GatherV2", [p, i], attrs, name)


# -- OneHot ----------------------------------------------------------------------------------
def _one_hot_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    indices, on, off = shapes
    if on.rank != 0 or off.rank != 0:
        raise fail(
            "on_value and off_value must be scalars",
            got=f"shapes {on} and {off}",
            expected="shape ()",
        )
    depth, axis = attrs["depth"], attrs["axis"]
    if depth < 0:
        raise fail("depth must be >= 0", got=f"depth {depth}", expected="depth >= 0")
    dims = list(indices.dims or ())
    if not -1 <= axis <= len(dims):
        raise fail(
            f"axis {axis} is out of range",
            got=f"axis {axis} for indices of shape {indices}",
            expected=f"axis in [-1, {len(dims)}]",
        )
    dims.insert(len(dims) if axis == -1 else axis, depth)
    return [Shape(dims)]


def _one_hot_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    indices, on, off = in_dtypes
    if indices not in INDEX_DTYPES:
        raise fail(
            "indices must be integers",
            got=f"indices of dtype {indices.name}",
            expected="int32 or int64",
        )
    if on != off:
        raise fail(
            "on_value and off_value must have one dtype",
            got=f"{on.name} and {off.name}",
            expected="equal dtypes",
        )
    return [on]


def _one_hot_reference(
    indices: np.ndarray, on_value: np.ndarray, off_value: np.ndarray, depth: int, axis: int
) -> np.ndarray:
    # Indices outside [0, depth) match no column: their rows are all off_value, as in TF.
    hot = indices[..., None] == np.arange(depth, dtype=indices.dtype)
    out = np.where(hot, on_value, off_value)
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return np.ascontiguousarray(out)


defop(
    "OneHot",
    STRUCTURED,
    _one_hot_shape,
    dtype=_one_hot_dtype,
    reference=_one_hot_reference,
    differentiable=False,
    doc="on_value where the index matches, off_value elsewhere",
)


def one_hot(
    indices: Any,
    depth: Any,
    on_value: Any = None,
    off_value: Any = None,
    axis: Any = None,
    dtype: Any = None,
    name: str | None = None,
) -> Tensor:
    """One-hot encoding: a new dim of size `depth` at `axis` (default last).

    Args:
      indices: an int32 or int64 tensor; indices outside [0, depth) give
        rows of all off_value.
      depth: the size of the new dim.
      on_value, off_value: scalars (default 1 and 0).
      axis: where the new dim goes, in [-1, rank]; -1 (default) is last.
      dtype: the output dtype; default: that of on_value or off_value if
        given, else float32.

    Raises:
      InvalidArgumentError: non-integer indices, on/off values that do not
        fit the dtype or are not scalars, a negative depth, an axis out of range.
    """
    i = _convert(indices, "OneHot", name, "indices")
    # TF1's dtype: `dtype`, else that of on_value, else that of off_value, else float32.
    dt = None if dtype is None else as_dtype(dtype)
    on = off = None
    if on_value is not None:
        on = _convert(on_value, "OneHot", name, "on_value", dt)
        dt = dt or on.dtype
    if off_value is not None:
        off = _convert(off_value, "OneHot", name, "off_value", dt)
        dt = dt or off.dtype
    dt = dt or dtypes.float32
    on = on if on is not None else _convert(np.ones((), dt.np), "OneHot", name, "on_value")
    off = off if off is not None else _convert(np.zeros((), dt.np), "OneHot", name, "off_value")
    a = -1 if axis is None else static_int(axis, "axis", "OneHot")
    if i.shape.rank is not None and a == i.shape.rank:
        a = -1
    attrs = {"depth": static_int(depth, "depth", "OneHot"), "axis": a}
    return _output("OneHot", [i, on, off], attrs, name)


# -- Tile, BroadcastTo, PadV2 ----------------------------------------------------------------
def _tile_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = shapes[0].dims
    assert dims is not None
    multiples = attrs["multiples"]
    if len(multiples) != len(dims) or any(m < 0 for m in multiples):
        raise fail(
            "multiples must have one entry >= 0 per dim",
            got=f"multiples {list(multiples)} for a tensor of shape {shapes[0]}",
            expected=f"{len(dims)} entries >= 0",
        )
    return [Shape([0 if m == 0 else None if d is None else d * m for d, m in zip(dims, multiples)])]


def _tile_reference(input: np.ndarray, multiples: tuple[int, ...]) -> np.ndarray:
    if len(multiples) != input.ndim:
        raise _run_error(
            "multiples must have one entry per dim",
            got=f"multiples {list(multiples)} for shape {input.shape}",
            expected=f"{input.ndim} entries",
        )
    return np.tile(input, multiples)


defop(
    "Tile",
    VIEW,
    _tile_shape,
    reference=_tile_reference,
    doc="repeats the tensor multiples[i] times along dim i",
)


def tile(input: Any, multiples: Any, name: str | None = None) -> Tensor:
    """Repeats `input` multiples[i] times along each dim i (len(multiples) == rank).

    Raises:
      InvalidArgumentError: multiples of the wrong length or negative.
    """
    t = _convert(input, "Tile", name)
    return _output(
        "Tile", [t], {"multiples": _static_int_list(multiples, "multiples", "Tile")}, name
    )


def _broadcast_to_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    source = shapes[0]
    dims = source.dims
    assert dims is not None
    target = attrs["shape"]
    bad = (
        any(d < 0 for d in target)
        or len(dims) > len(target)
        or any(d not in (None, 1, t) for d, t in zip(dims[::-1], target[::-1]))
    )
    if bad:
        raise fail(
            "cannot broadcast",
            got=f"shape {source} to shape {list(target)}",
            expected="each dim equal to the target's or 1, and no more dims than it",
        )
    return [Shape(target)]


def _broadcast_to_reference(input: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.broadcast_to(input, shape).copy()
    except ValueError:
        raise _run_error(
            "cannot broadcast",
            got=f"shape {input.shape}",
            expected=f"a shape that broadcasts to {list(shape)}",
        ) from None


defop(
    "BroadcastTo",
    VIEW,
    _broadcast_to_shape,
    reference=_broadcast_to_reference,
    doc="broadcasts to a given shape as NumPy does",
)


def broadcast_to(input: Any, shape: Any, name: str | None = None) -> Tensor:
    """`input` broadcast to `shape` with NumPy's rules.

    Raises:
      InvalidArgumentError: a shape `input` does not broadcast to.
    """
    t = _convert(input, "BroadcastTo", name)
    return _output(
        "BroadcastTo", [t], {"shape": _static_int_list(shape, "shape", "BroadcastTo")}, name
    )


def _pad_limit(mode: str, size: int) -> int:
    """The largest padding a mirror mode allows on a dim of `size` (TF's rule)."""
    return size - 1 if mode == "REFLECT" else size


def _pad_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    source, value = shapes
    dims = source.dims
    assert dims is not None
    paddings, mode = attrs["paddings"], attrs["mode"]
    if mode not in PAD_MODES:
        raise fail(
            "unknown padding mode", got=repr(mode), expected="one of " + ", ".join(PAD_MODES)
        )
    if value.rank not in (0, None):
        raise fail("constant_values must be a scalar", got=f"shape {value}", expected="shape ()")
    if len(paddings) != len(dims) or any(len(p) != 2 or min(p) < 0 for p in paddings):
        raise fail(
            "paddings must be one pair (before, after) >= 0 per dim",
            got=f"paddings {[list(p) for p in paddings]} for a tensor of shape {source}",
            expected=f"shape [{len(dims)}, 2] with entries >= 0",
        )
    out: list[int | None] = []
    for i, (d, (before, after)) in enumerate(zip(dims, paddings)):
        if mode != "CONSTANT" and d is not None and max(before, after) > _pad_limit(mode, d):
            raise fail(
                f"{mode} padding of dim {i} is larger than the dim allows",
                got=f"paddings {[before, after]} for dim {i} of size {d}",
                expected=f"paddings <= {_pad_limit(mode, d)}",
            )
        out.append(None if d is None else d + before + after)
    return [Shape(out)]


def _pad_reference(
    x: np.ndarray, constant_values: np.ndarray, paddings: tuple[tuple[int, int], ...], mode: str
) -> np.ndarray:
    if len(paddings) != x.ndim:  # np.pad would broadcast them silently
        raise _run_error(
            "paddings must have one pair per dim",
            got=f"{len(paddings)} pairs",
            expected=f"{x.ndim} for shape {x.shape}",
        )
    if x.ndim == 0:
        return x.copy()
    if mode == "CONSTANT":
        return np.pad(x, paddings, mode="constant", constant_values=constant_values)
    for i, (d, pair) in enumerate(zip(x.shape, paddings)):
        if max(pair) > _pad_limit(mode, d):
            raise _run_error(
                f"{mode} padding larger than dim {i} allows",
                got=f"paddings {list(pair)} for size {d}",
                expected=f"paddings <= {_pad_limit(mode, d)}",
            )
    return np.pad(x, paddings, mode=mode.lower())


defop(
    "PadV2",
    STRUCTURED,
    _pad_shape,
    dtype=_same_dtypes,
    reference=_pad_reference,
    doc="pads with a constant, or mirrors the edges (REFLECT, SYMMETRIC)",
)


def pad(
    tensor: Any,
    paddings: Any,
    mode: str = "CONSTANT",
    name: str | None = None,
    constant_values: Any = 0,
) -> Tensor:
    """Pads each dim i with paddings[i][0] entries before and paddings[i][1] after.

    Args:
      tensor: a Tensor or data.
      paddings: an int array of shape [rank, 2], entries >= 0.
      mode: "CONSTANT" (constant_values), "REFLECT" (mirror without the
        edge; paddings <= dim - 1) or "SYMMETRIC" (mirror with the edge;
        paddings <= dim); case-insensitive.
      name: name of the op (default "PadV2").
      constant_values: a scalar of the tensor's dtype, for CONSTANT.

    Raises:
      InvalidArgumentError: an unknown mode, paddings of the wrong shape or
        negative, mirror paddings larger than the dim.
    """
    t = _convert(tensor, "PadV2", name)
    array = static_value(paddings, "paddings", "PadV2")
    if array.size == 0:
        array = array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2 or (array.size and array.dtype.kind not in "iu"):
        raise _error(
            "PadV2",
            name,
            "paddings must be an int array of shape [rank, 2]",
            got=f"{array.tolist()!r}",
            expected=f"shape [{t.shape.rank or 'rank'}, 2]",
        )
    pairs = tuple((int(a), int(b)) for a, b in array)
    # As in TF1, a plain 0 (the default) means the zero of any dtype, False too.
    is_data = _as_tensor_object(constant_values) is None
    if is_data and np.ndim(constant_values) == 0 and constant_values == 0:
        constant_values = np.zeros((), t.dtype.np)
    value = _convert(constant_values, "PadV2", name, "constant_values", t.dtype)
    attrs = {"paddings": pairs, "mode": mode.upper() if isinstance(mode, str) else mode}
    return _output("PadV2", [t, value], attrs, name)


# -- Identity, StopGradient, Shape, Size, Rank -----------------------------------------------
def _same_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [shapes[0]]


def _copy(input: np.ndarray) -> np.ndarray:
    return input.copy()


defop("Identity", ELEMENTWISE, _same_shape, reference=_copy, unknown_rank_ok=True, doc="its input")
defop(
    "StopGradient",
    ELEMENTWISE,
    _same_shape,
    reference=_copy,
    unknown_rank_ok=True,
    differentiable=False,
    doc="its input; no gradient flows through it",
)


def identity(input: Any, name: str | None = None) -> Tensor:
    """A tensor with the same value as `input`."""
    return _output("Identity", [_convert(input, "Identity", name)], {}, name)


def stop_gradient(input: Any, name: str | None = None) -> Tensor:
    """`input`'s value; gradients do not flow back through it."""
    return _output("StopGradient", [_convert(input, "StopGradient", name)], {}, name)


def _out_type(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    if attrs["out_type"] not in INDEX_DTYPES:
        raise fail("unsupported out_type", got=attrs["out_type"].name, expected="int32 or int64")
    return [attrs["out_type"]]


defop(
    "Shape",
    STRUCTURED,
    lambda shapes, attrs: [Shape([shapes[0].rank])],
    dtype=_out_type,
    reference=lambda input, out_type: np.array(input.shape, dtype=out_type.np),
    differentiable=False,
    unknown_rank_ok=True,
    doc="the shape of its input, a 1-D int tensor",
)
defop(
    "Size",
    STRUCTURED,
    lambda shapes, attrs: [Shape(())],
    dtype=_out_type,
    reference=lambda input, out_type: np.array(input.size, dtype=out_type.np),
    differentiable=False,
    unknown_rank_ok=True,
    doc="the number of elements of its input",
)
defop(
    "Rank",
    STRUCTURED,
    lambda shapes, attrs: [Shape(())],
    dtype=lambda in_dtypes, attrs: [dtypes.int32],
    reference=lambda input: np.array(input.ndim, dtype=np.int32),
    differentiable=False,
    unknown_rank_ok=True,
    doc="the rank of its input, an int32 scalar",
)


def shape(input: Any, name: str | None = None, out_type: Any = dtypes.int32) -> Tensor:
    """The shape of `input` at run time, a 1-D tensor of `out_type` (int32 or int64)."""
    attrs = {"out_type": as_dtype(out_type)}
    return _output("Shape", [_convert(input, "Shape", name)], attrs, name)


def size(input: Any, name: str | None = None, out_type: Any = dtypes.int32) -> Tensor:
    """The number of elements of `input` at run time, a scalar of `out_type`."""
    attrs = {"out_type": as_dtype(out_type)}
    return _output("Size", [_convert(input, "Size", name)], attrs, name)


def rank(input: Any, name: str | None = None) -> Tensor:
    """The rank of `input`, an int32 scalar."""
    return _output("Rank", [_convert(input, "Rank", name)], {}, name)


Tensor._operators["getitem"] = getitem
