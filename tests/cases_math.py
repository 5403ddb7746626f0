"""Cases for the elementwise ops: arithmetic, math functions, comparisons, logic, where, cast."""

from __future__ import annotations

import math

import numpy as np
from optable import Case, ints_in, positive

import graphflow as gf

CASES: list[Case] = []

# Shapes exercising broadcasting, size 0 and size 1.
BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 5), (3, 1)),
    ((1,), (7,)),
    ((0, 3), (3,)),
    ((), (2, 2)),
]


def _int_floordiv(x, y):
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=x.dtype)
    xb, yb = np.broadcast_arrays(x, y)
    nz = yb != 0
    out[nz] = np.floor_divide(xb[nz], yb[nz])
    return out


def _int_mod(x, y):
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=x.dtype)
    xb, yb = np.broadcast_arrays(x, y)
    nz = yb != 0
    out[nz] = np.mod(xb[nz], yb[nz])
    return out


_BINARY = [
    ("add", gf.add, np.add, ("float32", "float64", "int32", "int64"), None),
    ("subtract", gf.subtract, np.subtract, ("float32", "float64", "int32", "int64"), None),
    ("multiply", gf.multiply, np.multiply, ("float32", "float64", "int32", "int64"), None),
    ("divide", gf.divide, np.true_divide, ("float32", "float64"), None),
    ("maximum", gf.maximum, np.maximum, ("float32", "float64", "int32", "int64"), None),
    ("minimum", gf.minimum, np.minimum, ("float32", "float64", "int32", "int64"), None),
    (
        "squared_difference",
        gf.squared_difference,
        lambda x, y: (x - y) ** 2,
        ("float32", "float64", "int32"),
        None,
    ),
    ("floordiv", gf.floordiv, np.floor_divide, ("float32", "float64"), None),
    ("mod", gf.mod, np.mod, ("float32", "float64"), None),
    ("floordiv_int", gf.floordiv, _int_floordiv, ("int32", "int64"), None),
    ("mod_int", gf.mod, _int_mod, ("int32", "int64"), None),
    ("pow", gf.pow, np.power, ("float32", "float64"), (None, None)),
    ("equal", gf.equal, np.equal, ("float32", "int32", "bool"), None),
    ("not_equal", gf.not_equal, np.not_equal, ("float64", "int64", "bool"), None),
    ("less", gf.less, np.less, ("float32", "int32"), None),
    ("less_equal", gf.less_equal, np.less_equal, ("float32", "int64"), None),
    ("greater", gf.greater, np.greater, ("float64", "int32"), None),
    ("greater_equal", gf.greater_equal, np.greater_equal, ("float32", "int32"), None),
]

for _name, _fn, _ref, _dts, _gen in _BINARY:
    for _dt in _dts:
        for _sx, _sy in BINARY_SHAPES:
            CASES.append(
                Case(f"{_name}/{_dt}/{_sx}x{_sy}", _fn, _ref, [_sx, _sy], [_dt, _dt], gen=_gen)
            )

for _name, _fn, _ref in (
    ("logical_and", gf.logical_and, np.logical_and),
    ("logical_or", gf.logical_or, np.logical_or),
):
    for _sx, _sy in BINARY_SHAPES:
        CASES.append(Case(f"{_name}/{_sx}x{_sy}", _fn, _ref, [_sx, _sy], ["bool", "bool"]))
CASES.append(Case("logical_not", gf.logical_not, np.logical_not, [(3, 4)], ["bool"]))


def _int_pow(x, y):
    out = np.empty(np.broadcast_shapes(x.shape, y.shape), dtype=x.dtype)
    for idx in np.ndindex(out.shape):
        a = int(np.broadcast_to(x, out.shape)[idx])
        b = int(np.broadcast_to(y, out.shape)[idx])
        if b >= 0:
            out[idx] = (
                np.array(a).astype(x.dtype) ** b
                if abs(a) <= 1
                else np.power(x.dtype.type(a), x.dtype.type(b))
            )
        else:
            out[idx] = 1 if a == 1 else ((-1) ** b if a == -1 else 0)
    return out


CASES.append(
    Case(
        "pow/int32/negative-exponents",
        gf.pow,
        _int_pow,
        [(4, 5), (4, 5)],
        ["int32", "int32"],
        gen=[ints_in(-3, 4), ints_in(-3, 4)],
    )
)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


_UNARY = [
    ("negative", gf.negative, np.negative, ("float32", "int32", "int64"), None, None),
    ("abs", gf.abs, np.abs, ("float32", "float64", "int32"), None, None),
    ("sign", gf.sign, np.sign, ("float32", "int64"), None, None),
    ("square", gf.square, np.square, ("float32", "int32"), None, None),
    ("sqrt", gf.sqrt, np.sqrt, ("float32", "float64"), positive, None),
    (
        "rsqrt",
        gf.rsqrt,
        lambda x: (1 / np.sqrt(x)).astype(x.dtype),
        ("float32", "float64"),
        positive,
        None,
    ),
    ("reciprocal", gf.reciprocal, np.reciprocal, ("float32", "float64"), None, None),
    ("exp", gf.exp, np.exp, ("float32", "float64"), None, None),
    ("expm1", gf.expm1, np.expm1, ("float32", "float64"), None, None),
    ("log", gf.log, np.log, ("float32", "float64"), positive, None),
    ("log1p", gf.log1p, np.log1p, ("float32", "float64"), positive, None),
    ("sin", gf.sin, np.sin, ("float32", "float64"), None, None),
    ("cos", gf.cos, np.cos, ("float32", "float64"), None, None),
    ("tanh", gf.tanh, np.tanh, ("float32", "float64"), None, None),
    ("sigmoid", gf.sigmoid, _sigmoid, ("float32", "float64"), None, 1e-6),
    ("erf", gf.erf, lambda x: _erf(x).astype(x.dtype), ("float32", "float64"), None, None),
    ("floor", gf.floor, np.floor, ("float32", "float64"), None, None),
    ("ceil", gf.ceil, np.ceil, ("float32", "float64"), None, None),
    ("round", gf.round, np.round, ("float32", "float64"), None, None),
    ("floor_int", gf.floor, lambda x: x, ("int32",), None, None),
]

for _name, _fn, _ref, _dts, _gen, _rtol in _UNARY:
    for _dt in _dts:
        for _shape in ((3, 4), (0,), (1,), (), (2, 3, 5)):
            CASES.append(
                Case(f"{_name}/{_dt}/{_shape}", _fn, _ref, [_shape], [_dt], gen=[_gen], rtol=_rtol)
            )

# Math functions of integers compute in float64, as NumPy does.
CASES.append(Case("exp/int32-promotes", gf.exp, np.exp, [(5,)], ["int32"]))
CASES.append(
    Case(
        "round/half-to-even",
        gf.round,
        np.round,
        [(6,)],
        ["float32"],
        gen=[lambda r, s, d: np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.49], d)],
    )
)

for _sc, _sx, _sy in (((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((0, 2), (2,), (1,))):
    for _dt in ("float32", "int64"):
        CASES.append(
            Case(f"where/{_dt}/{_sc}", gf.where, np.where, [_sc, _sx, _sy], ["bool", _dt, _dt])
        )

_CAST_PAIRS = [
    ("float32", "float64"),
    ("float64", "float32"),
    ("int32", "float32"),
    ("int64", "int32"),
    ("bool", "float32"),
    ("float32", "bool"),
    ("int32", "bool"),
    ("bool", "int64"),
    ("int32", "int64"),
    ("float64", "int64"),
]


def _cast_ref(to: str):
    def ref(x):
        if x.dtype.kind == "f" and np.dtype(to).kind == "i":
            info = np.iinfo(to)
            y = np.trunc(np.nan_to_num(x, nan=0.0, posinf=info.max, neginf=info.min))
            y = np.clip(y, info.min, info.max)
            out = np.empty(x.shape, dtype=to)
            for idx in np.ndindex(x.shape):
                v = y[idx]
                out[idx] = info.max if v >= 2.0 ** (info.bits - 1) else int(v)
            return out
        return x.astype(to)

    return ref


for _src, _dst in _CAST_PAIRS:
    CASES.append(
        Case(
            f"cast/{_src}->{_dst}",
            lambda x, _d=_dst: gf.cast(x, _d),
            _cast_ref(_dst),
            [(4, 6)],
            [_src],
        )
    )
CASES.append(
    Case(
        "cast/float->int32-saturates",
        lambda x: gf.cast(x, "int32"),
        _cast_ref("int32"),
        [(8,)],
        ["float32"],
        gen=[lambda r, s, d: np.array([1e10, -1e10, np.nan, np.inf, -np.inf, 2.7, -2.7, 0.0], d)],
    )
)

for _dt in ("float32", "int32"):
    CASES.append(
        Case(
            f"clip_by_value/{_dt}",
            lambda x: gf.clip_by_value(x, -1, 2),
            lambda x: np.clip(x, -1, 2),
            [(4, 5)],
            [_dt],
        )
    )
CASES.append(
    Case(
        "clip_by_value/tensor-bounds",
        gf.clip_by_value,
        lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        [(3, 4), (4,), ()],
        ["float32"] * 3,
    )
)

# Python operators and NumPy's promotion rules.
CASES += [
    Case(
        "operators/arith",
        lambda x, y: (x + y) * 2.0 - y / 3.0 + (-x) ** 2,
        lambda x, y: (x + y) * np.float32(2) - y / np.float32(3) + (-x) ** 2,
        [(3, 4), (4,)],
        ["float32", "float32"],
    ),
    Case(
        "operators/abs-floordiv-mod",
        lambda x, y: abs(x) // y + x % y,
        lambda x, y: np.abs(x) // y + x % y,
        [(5,), (5,)],
        ["float64", "float64"],
        gen=[None, positive],
    ),
    Case(
        "operators/compare",
        lambda x, y: [x < y, x <= y, x > y, x >= y],
        lambda x, y: [x < y, x <= y, x > y, x >= y],
        [(6,), (6,)],
        ["int32", "int32"],
    ),
    Case(
        "operators/logic",
        lambda a, b: [a & b, a | b, ~a],
        lambda a, b: [a & b, a | b, ~a],
        [(6,), (6,)],
        ["bool", "bool"],
    ),
    Case(
        "promote/int32+float32->float64",
        lambda x, y: x + y,
        lambda x, y: x + y,
        [(3,), (3,)],
        ["int32", "float32"],
    ),
    Case("promote/int32*2.5->float64", lambda x: x * 2.5, lambda x: x * 2.5, [(3,)], ["int32"]),
    Case("promote/float32+1->float32", lambda x: x + 1, lambda x: x + 1, [(3,)], ["float32"]),
    Case("promote/int64-weak-int", lambda x: 3 - x, lambda x: 3 - x, [(3,)], ["int64"]),
    Case(
        "promote/int-true-division->float64",
        lambda x, y: x / y,
        lambda x, y: x / y,
        [(4,), (4,)],
        ["int32", "int32"],
        gen=[None, positive],
    ),
    Case(
        "matmul-operator",
        lambda a, b: a @ b,
        lambda a, b: a @ b,
        [(2, 3), (3, 4)],
        ["float64", "float64"],
    ),
]
