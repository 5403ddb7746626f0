"""Elementwise ops: arithmetic, math functions, comparisons, logic, where, cast, clip.

Every op here is of kind ELEMENTWISE: its output has the broadcast shape of
its inputs, and element i depends only on element i of each (broadcast)
input, which is what lets the compiler fuse chains of them into one loop.

Binary ops take operands of one dtype; the public functions promote their
arguments first, as NumPy does (see graphflow.ops.convert.promote).

Integer semantics (the compiled code matches them, see docs/numerics.md):
division and modulo by zero give 0, overflow wraps around (two's
complement), a negative integer power gives 0 unless the base is 1 or -1,
and a cast from float to int truncates toward zero, saturates at the
integer range and maps NaN to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from graphflow import dtypes
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Tensor
from graphflow.ops.convert import convert_to_tensor, promote
from graphflow.ops.registry import ELEMENTWISE, apply_op, defop, fail
from graphflow.shapes import Shape, broadcast_shapes

NUMERIC = dtypes.NUMERIC_DTYPES
FLOATS = dtypes.FLOAT_DTYPES
BOOL = (dtypes.bool_,)
ALL = dtypes.ALL_DTYPES


# -- rules ---------------------------------------------------------------------------------
def broadcast_rule(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [broadcast_shapes(*shapes)]


def _dtype_rule(allowed: tuple[DType, ...], out: DType | None = None) -> Callable:
    def rule(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
        first = in_dtypes[0]
        for d in in_dtypes:
            if d != first:
                raise fail(
                    "operands must have one dtype",
                    got=", ".join(x.name for x in in_dtypes),
                    expected="equal dtypes (the public functions promote them)",
                )
        if first not in allowed:
            raise fail(
                "unsupported dtype",
                got=first.name,
                expected="one of " + ", ".join(a.name for a in allowed),
            )
        return [out or first]

    return rule


# -- integer-safe references ---------------------------------------------------------------
def _int_floordiv(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    safe = np.where(y == 0, 1, y)
    return np.where(y == 0, 0, np.floor_divide(x, safe)).astype(x.dtype)


def _int_mod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    safe = np.where(y == 0, 1, y)
    return np.where(y == 0, 0, np.mod(x, safe)).astype(x.dtype)


def _floordiv(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _int_floordiv(x, y) if x.dtype.kind == "i" else np.floor_divide(x, y)


def _mod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _int_mod(x, y) if x.dtype.kind == "i" else np.mod(x, y)


def _pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind != "i":
        # C99 pow for every exponent. NumPy computes sqrt, square or 1/x when
        # the exponent is one repeated scalar (0.5, 2, -1), which differs from
        # pow at -0 and -Inf; an exponent array of its own avoids that path.
        shape = np.broadcast_shapes(x.shape, y.shape)
        return np.power(x, np.array(np.broadcast_to(y, shape)))
    # NumPy refuses negative integer exponents; graphflow defines them as the
    # truncated quotient 1 / x**-y: 1 for x == 1, +-1 for x == -1, else 0.
    base = np.power(x, np.where(y < 0, 0, y))
    odd = (y % 2) != 0
    negative = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0))
    return np.where(y < 0, negative, base).astype(x.dtype)


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return (1 / np.sqrt(x)).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Stable on both tails: exp of a non-positive number never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def _erf(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x.copy()
    return _erf64(x.astype(np.float64)).astype(x.dtype)


def _identity_for_ints(fn: Callable) -> Callable:
    def reference(x: np.ndarray) -> np.ndarray:
        return x.copy() if x.dtype.kind in "ib" else fn(x)

    return reference


def cast_reference(x: np.ndarray, dtype: DType) -> np.ndarray:
    """NumPy's astype, except float -> int: truncate, saturate, NaN -> 0 (never undefined)."""
    if x.dtype.kind == "f" and dtype.is_integer:
        info = np.iinfo(dtype.np)
        clipped = np.clip(np.nan_to_num(x, nan=0.0), float(info.min), float(info.max))
        # float(info.max) rounds up to 2**63 for int64: saturate that edge explicitly.
        result = np.trunc(clipped).astype(np.float64)
        out = np.where(result >= float(info.max), info.max, 0).astype(dtype.np)
        inside = result < float(info.max)
        out[inside] = result[inside].astype(dtype.np)
        return out
    return x.astype(dtype.np)


def _as_dtype_attr(d: Any) -> DType:
    return as_dtype(d)


# -- declarations --------------------------------------------------------------------------
def _elementwise(
    name: str,
    reference: Callable,
    allowed: tuple[DType, ...],
    out: DType | None = None,
    differentiable: bool = True,
    doc: str = "",
) -> None:
    defop(
        name,
        ELEMENTWISE,
        broadcast_rule,
        dtype=_dtype_rule(allowed, out),
        reference=reference,
        differentiable=differentiable,
        doc=doc,
    )


_elementwise("Add", np.add, NUMERIC, doc="x + y")
_elementwise("Sub", np.subtract, NUMERIC, doc="x - y")
_elementwise("Mul", np.multiply, NUMERIC, doc="x * y")
_elementwise("RealDiv", np.true_divide, FLOATS, doc="x / y (floats; ints are cast to float64)")
_elementwise("FloorDiv", _floordiv, NUMERIC, doc="floor(x / y); int division by 0 gives 0")
_elementwise("FloorMod", _mod, NUMERIC, doc="x - floor(x / y) * y; int modulo by 0 gives 0")
_elementwise("Pow", _pow, NUMERIC, doc="x ** y")
_elementwise("Maximum", np.maximum, NUMERIC, doc="max(x, y), NaN if either is NaN")
_elementwise("Minimum", np.minimum, NUMERIC, doc="min(x, y), NaN if either is NaN")
_elementwise("SquaredDifference", lambda x, y: np.square(x - y), NUMERIC, doc="(x - y) ** 2")
_elementwise("Neg", np.negative, NUMERIC, doc="-x")
_elementwise("Abs", np.abs, NUMERIC, doc="|x|")
_elementwise("Sign", _sign, NUMERIC, differentiable=False, doc="-1, 0 or 1 (NaN for NaN)")
_elementwise("Square", np.square, NUMERIC, doc="x * x")
_elementwise("Sqrt", np.sqrt, FLOATS, doc="square root")
_elementwise("Rsqrt", _rsqrt, FLOATS, doc="1 / sqrt(x)")
_elementwise("Reciprocal", np.reciprocal, FLOATS, doc="1 / x")
_elementwise("Exp", np.exp, FLOATS, doc="e ** x")
_elementwise("Expm1", np.expm1, FLOATS, doc="e ** x - 1, accurate near 0")
_elementwise("Log", np.log, FLOATS, doc="natural logarithm")
_elementwise("Log1p", np.log1p, FLOATS, doc="log(1 + x), accurate near 0")
_elementwise("Sin", np.sin, FLOATS, doc="sine")
_elementwise("Cos", np.cos, FLOATS, doc="cosine")
_elementwise("Tanh", np.tanh, FLOATS, doc="hyperbolic tangent")
_elementwise("Sigmoid", _sigmoid, FLOATS, doc="1 / (1 + exp(-x))")
_elementwise("Erf", _erf, FLOATS, doc="the error function")
_elementwise("Floor", _identity_for_ints(np.floor), NUMERIC, differentiable=False, doc="round down")
_elementwise("Ceil", _identity_for_ints(np.ceil), NUMERIC, differentiable=False, doc="round up")
_elementwise(
    "Round", _identity_for_ints(np.round), NUMERIC, differentiable=False, doc="round half to even"
)
for _name, _fn in (
    ("Equal", np.equal),
    ("NotEqual", np.not_equal),
    ("Less", np.less),
    ("LessEqual", np.less_equal),
    ("Greater", np.greater),
    ("GreaterEqual", np.greater_equal),
):
    _elementwise(
        _name,
        _fn,
        ALL,
        out=dtypes.bool_,
        differentiable=False,
        doc=f"elementwise comparison ({_name})",
    )
_elementwise("LogicalAnd", np.logical_and, BOOL, differentiable=False, doc="x and y")
_elementwise("LogicalOr", np.logical_or, BOOL, differentiable=False, doc="x or y")
_elementwise("LogicalNot", np.logical_not, BOOL, differentiable=False, doc="not x")


def _select_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    cond, x, y = in_dtypes
    if cond != dtypes.bool_:
        raise fail("the condition must be bool", got=cond.name, expected="bool")
    if x != y:
        raise fail(
            "x and y must have one dtype", got=f"{x.name} and {y.name}", expected="equal dtypes"
        )
    return [x]


defop(
    "SelectV2",
    ELEMENTWISE,
    broadcast_rule,
    dtype=_select_dtype,
    reference=lambda c, x, y: np.where(c, x, y),
    doc="where(cond, x, y) with broadcasting",
)


def _cast_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    return [attrs["dtype"]]


defop(
    "Cast",
    ELEMENTWISE,
    broadcast_rule,
    dtype=_cast_dtype,
    reference=cast_reference,
    doc="convert to dtype; float -> int truncates, saturates, NaN -> 0",
)


def _clip_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    return _dtype_rule(NUMERIC)(in_dtypes, attrs)


defop(
    "ClipByValue",
    ELEMENTWISE,
    broadcast_rule,
    dtype=_clip_dtype,
    reference=lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    doc="min(max(x, lo), hi), NaN stays NaN",
)


# -- the public functions ------------------------------------------------------------------
def _binary(op_type: str, api: str) -> Callable[..., Tensor]:
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        (a, b), dtype = promote(x, y, op_name=api)
        if dtype.is_bool and op_type not in ("Maximum", "Minimum"):
            raise _bool_error(op_type, api, name)
        return apply_op(op_type, [a, b], name=name or op_type).outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"Elementwise {api}(x, y) with NumPy broadcasting and dtype promotion."
    return fn


def _bool_error(op_type: str, api: str, name: str | None) -> Exception:
    from graphflow import errors
    from graphflow.source import user_location

    return errors.InvalidArgumentError(
        errors.op_message(
            op_type,
            name or op_type,
            user_location(),
            f"{api} of bool tensors",
            got="bool",
            expected="numbers (cast bools with gf.cast first)",
        )
    )


add = _binary("Add", "add")
subtract = _binary("Sub", "subtract")
multiply = _binary("Mul", "multiply")
floordiv = _binary("FloorDiv", "floordiv")
floor_div = floordiv
mod = _binary("FloorMod", "mod")
floormod = mod
maximum = _binary("Maximum", "maximum")
minimum = _binary("Minimum", "minimum")
squared_difference = _binary("SquaredDifference", "squared_difference")


def pow(x: Any, y: Any, name: str | None = None) -> Tensor:
    """x ** y elementwise. Integer bases with negative integer exponents give 0 (|x| > 1)."""
    (a, b), dtype = promote(x, y, op_name="pow")
    if dtype.is_bool:
        raise _bool_error("Pow", "pow", name)
    return apply_op("Pow", [a, b], name=name or "Pow").outputs[0]


def _to_float(values: list[Tensor], dtype: DType) -> tuple[list[Tensor], DType]:
    if dtype.is_floating:
        return values, dtype
    return [cast(v, dtypes.float64) for v in values], dtypes.float64


def divide(x: Any, y: Any, name: str | None = None) -> Tensor:
    """x / y elementwise (true division: integers give float64, as in NumPy)."""
    (a, b), dtype = promote(x, y, op_name="divide")
    (a, b), dtype = _to_float([a, b], dtype)
    return apply_op("RealDiv", [a, b], name=name or "truediv").outputs[0]


truediv = divide
div = divide
realdiv = divide


def _unary(op_type: str, api: str, float_only: bool = False) -> Callable[..., Tensor]:
    def fn(x: Any, name: str | None = None) -> Tensor:
        t = convert_to_tensor(x)
        if float_only and (t.dtype.is_integer):
            t = cast(t, dtypes.float64)  # NumPy: math functions of ints are float64
        if t.dtype.is_bool and op_type != "LogicalNot":
            raise _bool_error(op_type, api, name)
        return apply_op(op_type, [t], name=name or op_type).outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"Elementwise {api}(x)."
    return fn


negative = _unary("Neg", "negative")
neg = negative
abs = _unary("Abs", "abs")
sign = _unary("Sign", "sign")
square = _unary("Square", "square")
sqrt = _unary("Sqrt", "sqrt", float_only=True)
rsqrt = _unary("Rsqrt", "rsqrt", float_only=True)
reciprocal = _unary("Reciprocal", "reciprocal", float_only=True)
exp = _unary("Exp", "exp", float_only=True)
expm1 = _unary("Expm1", "expm1", float_only=True)
log = _unary("Log", "log", float_only=True)
log1p = _unary("Log1p", "log1p", float_only=True)
sin = _unary("Sin", "sin", float_only=True)
cos = _unary("Cos", "cos", float_only=True)
tanh = _unary("Tanh", "tanh", float_only=True)
sigmoid = _unary("Sigmoid", "sigmoid", float_only=True)
erf = _unary("Erf", "erf", float_only=True)
floor = _unary("Floor", "floor")
ceil = _unary("Ceil", "ceil")
round = _unary("Round", "round")


def _compare(op_type: str, api: str) -> Callable[..., Tensor]:
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        (a, b), _ = promote(x, y, op_name=api)
        return apply_op(op_type, [a, b], name=name or op_type).outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"Elementwise {api}(x, y) -> bool, with broadcasting and promotion."
    return fn


equal = _compare("Equal", "equal")
not_equal = _compare("NotEqual", "not_equal")
less = _compare("Less", "less")
less_equal = _compare("LessEqual", "less_equal")
greater = _compare("Greater", "greater")
greater_equal = _compare("GreaterEqual", "greater_equal")


def _logical(op_type: str, api: str) -> Callable[..., Tensor]:
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        a = convert_to_tensor(x, dtype=dtypes.bool_)
        b = convert_to_tensor(y, dtype=dtypes.bool_)
        return apply_op(op_type, [a, b], name=name or op_type).outputs[0]

    fn.__name__ = api
    fn.__doc__ = f"Elementwise {api}(x, y) of bool tensors."
    return fn


logical_and = _logical("LogicalAnd", "logical_and")
logical_or = _logical("LogicalOr", "logical_or")


def logical_not(x: Any, name: str | None = None) -> Tensor:
    """Elementwise not of a bool tensor."""
    t = convert_to_tensor(x, dtype=dtypes.bool_)
    return apply_op("LogicalNot", [t], name=name or "LogicalNot").outputs[0]


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Tensor:
    """Elementwise `x if condition else y`, broadcasting all three (TF2/NumPy semantics).

    Raises:
      UnimplementedError: for the one-argument form (indices of true
        elements), whose output size depends on the data.
    """
    if x is None or y is None:
        from graphflow import errors
        from graphflow.source import user_location

        raise errors.UnimplementedError(
            errors.op_message(
                "SelectV2",
                name or "SelectV2",
                user_location(),
                "where(condition) without x and y (a data-dependent output size)",
                expected="where(condition, x, y)",
            )
        )
    c = convert_to_tensor(condition, dtype=dtypes.bool_)
    (a, b), _ = promote(x, y, op_name="where")
    return apply_op("SelectV2", [c, a, b], name=name or "SelectV2").outputs[0]


where_v2 = where


def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """Converts x to `dtype`. Float to int truncates toward 0, saturates, and maps NaN to 0."""
    t = convert_to_tensor(x)
    target = as_dtype(dtype)
    return apply_op("Cast", [t], {"dtype": target}, name=name or "Cast").outputs[0]


def to_float(x: Any, name: str | None = None) -> Tensor:
    return cast(x, dtypes.float32, name=name or "ToFloat")


def to_int32(x: Any, name: str | None = None) -> Tensor:
    return cast(x, dtypes.int32, name=name or "ToInt32")


def to_int64(x: Any, name: str | None = None) -> Tensor:
    return cast(x, dtypes.int64, name=name or "ToInt64")


def clip_by_value(
    t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None
) -> Tensor:
    """Clips t to [clip_value_min, clip_value_max] elementwise; NaN stays NaN."""
    (x, lo, hi), dtype = promote(t, clip_value_min, clip_value_max, op_name="clip_by_value")
    if dtype.is_bool:
        raise _bool_error("ClipByValue", "clip_by_value", name)
    return apply_op("ClipByValue", [x, lo, hi], name=name or "clip_by_value").outputs[0]
