"""Turning Python values into Tensors, dtype promotion of operands, and static arguments."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType, as_dtype, result_type
from graphflow.graph import Operation, Tensor, get_default_graph
from graphflow.ops.registry import apply_op
from graphflow.source import user_location

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def is_tensor(value: Any) -> bool:
    return isinstance(value, Tensor) or hasattr(value, "_as_graph_element")


def _as_tensor_object(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "_as_graph_element"):
        element = value._as_graph_element()
        if isinstance(element, Tensor):
            return element
    return None


def default_numpy_value(value: Any, dtype: DType | None = None, what: str = "value") -> np.ndarray:
    """The array for a constant: TF1's defaults for Python data, NumPy's dtype for arrays.

    Python floats become float32 and Python ints int32 (int64 when they do
    not fit), as in TF1; NumPy arrays and scalars keep their dtype. With
    `dtype`, the value is converted to it when that loses nothing.

    Raises:
      InvalidArgumentError: for a value of an unsupported type, or one that
        cannot be converted to `dtype` safely.
    """
    is_numpy = isinstance(value, np.ndarray | np.generic)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise errors.InvalidArgumentError(
            f"cannot convert {what} {_short(value)} to a tensor: {e}"
        ) from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise errors.InvalidArgumentError(
            f"cannot convert {what} {_short(value)} to a tensor; got elements of NumPy dtype "
            f"{array.dtype}, expected numbers or bools"
        )
    if dtype is None:
        if is_numpy:
            return array.astype(_supported_numpy_dtype(array, what), copy=False)
        if array.dtype.kind == "f":
            return array.astype(np.float32)
        if array.dtype.kind in "iu":
            if array.size and (array.min() < _INT32_MIN or array.max() > _INT32_MAX):
                return array.astype(np.int64)
            return array.astype(np.int32)
        return array
    return cast_value(array, dtype, what, strict=is_numpy)


def _supported_numpy_dtype(array: np.ndarray, what: str) -> np.dtype:
    """The array's dtype if graphflow supports it, else the smallest one that holds it exactly."""
    if array.dtype.kind == "b":
        return array.dtype
    for candidate in ("float32", "float64") if array.dtype.kind == "f" else ("int32", "int64"):
        if array.dtype == np.dtype(candidate):
            return array.dtype
    for candidate in ("int32", "int64", "float32", "float64"):
        if np.can_cast(array.dtype, candidate, casting="safe"):
            return np.dtype(candidate)
    raise errors.InvalidArgumentError(
        f"cannot convert {what} of NumPy dtype {array.dtype} to a tensor; expected "
        "float32, float64, int32, int64, bool or a type that converts to one of them safely"
    )


def cast_value(array: np.ndarray, dtype: DType, what: str, strict: bool) -> np.ndarray:
    """Converts `array` to `dtype` if that is safe; for ints, checks the range.

    Floats may narrow (float64 -> float32) and ints may narrow when every
    value fits; a float never becomes an int, nor a number a bool.
    """
    source = array.dtype
    if source == dtype.np:
        return array
    ok = np.can_cast(source, dtype.np, casting="same_kind") or (
        source.kind in "biu" and dtype.np.kind in "iuf"
    )
    if source.kind == "b" and dtype.np.kind != "b":
        ok = True
    if dtype.is_bool and source.kind != "b":
        ok = False
    if not ok:
        raise errors.InvalidArgumentError(
            f"cannot convert {what} of dtype {source} to {dtype.name} without losing "
            f"information; got {_short(array)}, expected values of a dtype that converts "
            f"safely to {dtype.name} (cast explicitly with astype or gf.cast)"
        )
    if dtype.is_integer and source.kind in "iu" and array.size:
        info = np.iinfo(dtype.np)
        if array.min() < info.min or array.max() > info.max:
            raise errors.InvalidArgumentError(
                f"{what} has values outside the range of {dtype.name}; got min {array.min()}, "
                f"max {array.max()}, expected values in [{info.min}, {info.max}]"
            )
    return array.astype(dtype.np)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def constant_from_array(array: np.ndarray, name: str | None = None) -> Tensor:
    dtype = as_dtype(array.dtype)
    op = apply_op(
        "Const",
        [],
        {"value": array, "dtype": dtype},
        name=name or "Const",
        location=user_location(),
    )
    return op.outputs[0]


def convert_to_tensor(value: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    """Returns `value` as a Tensor: Tensors and Variables as they are, data as a constant.

    Args:
      value: a Tensor, a Variable, a NumPy array, a Python scalar or a
        (nested) list of them; a list that holds Tensors is stacked.
      dtype: optional; a Tensor must already have it, data is converted to it.
      name: name of a new constant.

    Raises:
      InvalidArgumentError: a Tensor of another dtype, or data that does not
        convert safely.
    """
    want = as_dtype(dtype) if dtype is not None else None
    tensor = _as_tensor_object(value)
    if tensor is not None:
        if want is not None and tensor.dtype != want:
            raise errors.InvalidArgumentError(
                f"tensor {tensor.name} has dtype {tensor.dtype.name}; expected {want.name} "
                "(use gf.cast to convert it)"
            )
        return tensor
    if isinstance(value, Operation):
        raise errors.InvalidArgumentError(
            f"cannot use the Operation {value.name!r} as a tensor; expected a Tensor "
            f"(maybe {value.name + ':0'!r}?)"
        )
    if isinstance(value, list | tuple) and _contains_tensor(value):
        from graphflow.ops.array_ops import stack

        parts = [convert_to_tensor(v, dtype=want) for v in value]
        return stack(parts, axis=0, name=name or "packed")
    try:
        array = default_numpy_value(value, want)
    except errors.InvalidArgumentError as e:
        raise errors.InvalidArgumentError(
            errors.op_message("Const", name or "Const", user_location(), e.message)
        ) from None
    return constant_from_array(array, name=name)


def _contains_tensor(value: Any) -> bool:
    if _as_tensor_object(value) is not None:
        return True
    if isinstance(value, list | tuple):
        return any(_contains_tensor(v) for v in value)
    return False


def _is_weak(value: Any) -> bool:
    """Python scalars and lists of them take the dtype of the tensor they meet (NEP 50)."""
    if isinstance(value, bool | numbers.Number) and not isinstance(value, np.generic):
        return True
    if isinstance(value, list | tuple) and value and not _contains_tensor(value):
        return all(_is_weak(v) for v in value)
    return False


def _weak_representative(value: Any) -> Any:
    """A Python scalar standing for the kind of a weak value, for np.result_type."""
    if isinstance(value, list | tuple):
        kinds = [_weak_representative(v) for v in value]
        if any(isinstance(k, float) for k in kinds):
            return 0.0
        if any(isinstance(k, int) and not isinstance(k, bool) for k in kinds):
            return 0
        return False
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, numbers.Real):
        return 0.0
    return value


def promote(*operands: Any, op_name: str = "op") -> tuple[list[Tensor], DType]:
    """Converts operands to Tensors of one dtype, promoting as NumPy does.

    Python scalars (and lists of them) are weak: `x_f32 + 1.0` stays float32,
    `x_i32 + 1` stays int32, `x_i32 + 0.5` becomes float64. Tensors and NumPy
    arrays are strong: float32 with int32 gives float64, as in NumPy.
    Tensors of another dtype are cast with a Cast op.
    """
    strong: list[Any] = []
    weak: list[Any] = []
    for v in operands:
        if _is_weak(v):
            weak.append(_weak_representative(v))
        else:
            tensor = _as_tensor_object(v)
            if tensor is not None:
                strong.append(tensor.dtype)
            else:
                strong.append(as_dtype(_operand_array(v, None, op_name).dtype))
    if not strong:
        # Only Python values: TF1's defaults (float32, int32) decide.
        strong = [as_dtype(_operand_array(v, None, op_name).dtype) for v in operands]
        weak = []
    try:
        dtype = result_type(*strong, *weak)
    except Exception as e:  # noqa: BLE001 - NumPy raises several types here
        raise errors.InvalidArgumentError(f"{op_name}: cannot promote operands: {e}") from None
    out = []
    for v in operands:
        tensor = _as_tensor_object(v)
        if tensor is None:
            tensor = constant_from_array(_operand_array(v, dtype, op_name))
        elif tensor.dtype != dtype:
            from graphflow.ops.math_ops import cast

            tensor = cast(tensor, dtype)
        out.append(tensor)
    return out, dtype


def _operand_array(value: Any, dtype: DType | None, op_name: str) -> np.ndarray:
    """An operand's data as an array; errors name the op and the user's line."""
    try:
        return default_numpy_value(value, dtype, what=f"an operand of {op_name}")
    except errors.InvalidArgumentError as e:
        raise errors.InvalidArgumentError(
            errors.op_message(op_name, op_name, user_location(), e.message)
        ) from None


def static_value(value: Any, what: str, op_name: str, name: str | None = None) -> np.ndarray:
    """The value of an argument that must be known when the graph is built.

    Accepts Python data, NumPy arrays, Tensors produced by a Const op, and
    lists mixing them.

    Raises:
      UnimplementedError: for a Tensor whose value is only known at run time.
      InvalidArgumentError: for a value that is not numeric data.
    """
    tensor = _as_tensor_object(value)
    if tensor is not None:
        if tensor.op.type == "Const":
            return np.asarray(tensor.op.attrs["value"])
        raise errors.UnimplementedError(
            errors.op_message(
                op_name,
                name or op_name,
                user_location(),
                f"{what} must be known when the graph is built",
                got=f"the computed tensor {tensor.name}",
                expected="a Python value, a NumPy array or a constant",
            )
        )
    if isinstance(value, list | tuple) and _contains_tensor(value):
        return np.asarray([static_value(v, what, op_name, name) for v in value])
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as e:
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_name,
                name or op_name,
                user_location(),
                f"{what} is malformed",
                got=_short(value),
                expected="numbers or a list of numbers",
            )
        ) from e


def static_ints(value: Any, what: str, op_name: str) -> tuple[int, ...]:
    """A static 1-D list of ints (a shape, perm, multiples, ...)."""
    array = static_value(value, what, op_name)
    if array.ndim > 1 or (array.size and array.dtype.kind not in "iub"):
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_name,
                op_name,
                user_location(),
                f"{what} must be a list of ints",
                got=_short(value),
            )
        )
    return tuple(int(v) for v in array.reshape(-1))


def static_int(value: Any, what: str, op_name: str) -> int:
    array = static_value(value, what, op_name)
    if array.ndim != 0 or array.dtype.kind not in "iu":
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_name, op_name, user_location(), f"{what} must be an int", got=_short(value)
            )
        )
    return int(array)


def default_graph_for(*values: Any) -> Any:
    for v in values:
        tensor = _as_tensor_object(v)
        if tensor is not None:
            return tensor.graph
    return get_default_graph()


def as_tensor_list(values: Sequence[Any], op_name: str) -> list[Tensor]:
    if not isinstance(values, list | tuple):
        raise errors.InvalidArgumentError(
            f"{op_name}: expected a list of tensors; got {type(values).__name__}"
        )
    return [convert_to_tensor(v) for v in values]
