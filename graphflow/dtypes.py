"""The element types a tensor can have, and NumPy's promotion between them."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphflow import errors


class DType:
    """An element type: float32, float64, int32, int64 or bool.

    DTypes are singletons; compare them with `==` or `is`. `as_numpy_dtype`
    gives the NumPy scalar type, `np` the `numpy.dtype`.
    """

    __slots__ = ("as_numpy_dtype", "name", "np")

    def __init__(self, name: str, numpy_type: type) -> None:
        self.name = name
        self.as_numpy_dtype = numpy_type
        self.np = np.dtype(numpy_type)

    @property
    def is_floating(self) -> bool:
        return self.np.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.np.kind == "i"

    @property
    def is_bool(self) -> bool:
        return self.np.kind == "b"

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def min(self) -> Any:
        return np.finfo(self.np).min if self.is_floating else np.iinfo(self.np).min

    @property
    def max(self) -> Any:
        return np.finfo(self.np).max if self.is_floating else np.iinfo(self.np).max

    def __repr__(self) -> str:
        return f"gf.{self.name}"

    def __reduce__(self) -> str:
        return self.name


float32 = DType("float32", np.float32)
float64 = DType("float64", np.float64)
int32 = DType("int32", np.int32)
int64 = DType("int64", np.int64)
bool_ = DType("bool", np.bool_)

ALL_DTYPES: tuple[DType, ...] = (float32, float64, int32, int64, bool_)
FLOAT_DTYPES: tuple[DType, ...] = (float32, float64)
INT_DTYPES: tuple[DType, ...] = (int32, int64)
NUMERIC_DTYPES: tuple[DType, ...] = (float32, float64, int32, int64)

_BY_NUMPY: dict[np.dtype, DType] = {d.np: d for d in ALL_DTYPES}
_BY_NAME: dict[str, DType] = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"bool_": bool_, "float": float32, "double": float64, "int": int32})


def as_dtype(value: Any) -> DType:
    """Converts a DType, a NumPy dtype or type, or a name such as "float32" to a DType.

    Raises:
      InvalidArgumentError: for a type graphflow does not support.
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    try:
        key = np.dtype(value)
    except TypeError:
        key = None
    if key is not None and key in _BY_NUMPY:
        return _BY_NUMPY[key]
    if value is float:
        return float32
    raise errors.InvalidArgumentError(
        f"unsupported dtype {value!r}; expected one of " + ", ".join(d.name for d in ALL_DTYPES)
    )


def result_type(*operands: Any) -> DType:
    """NumPy's promotion of DTypes and Python scalars (NEP 50: Python scalars are weak).

    `result_type(float32, 1.0)` is float32; `result_type(int32, 1.5)` is float64;
    `result_type(int32, float32)` is float64, as in NumPy.
    """
    converted = [op.np if isinstance(op, DType) else op for op in operands]
    return as_dtype(np.result_type(*converted))
