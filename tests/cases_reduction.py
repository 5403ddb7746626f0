"""Cases for the reductions: sum, mean, max, min, prod, any, all, logsumexp, argmax, argmin.

The references are plain NumPy written for the tests: float results are
computed in float64 and rounded to the input's dtype, empty reductions give
the identity, and the integer mean truncates toward zero (TF's semantics).
"""

from __future__ import annotations

import math

import numpy as np
from optable import Case

import graphflow as gf

CASES: list[Case] = []

# Loose enough for float32 sums taken in another order than float64's.
F32_SUM_TOL = {"rtol": 1e-5, "atol": 1e-4}


def _axes(x: np.ndarray, axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    axis = [axis] if isinstance(axis, int) else axis
    return tuple(sorted({a % x.ndim for a in axis}))


def _out_shape(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _sum_ref(x, axis, keepdims):
    axes = _axes(x, axis)
    if x.dtype.kind == "f":
        return np.sum(x.astype(np.float64), axis=axes, keepdims=keepdims).astype(x.dtype)
    return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


def _prod_ref(x, axis, keepdims):
    axes = _axes(x, axis)
    if x.dtype.kind == "f":
        return np.prod(x.astype(np.float64), axis=axes, keepdims=keepdims).astype(x.dtype)
    return np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


def _mean_ref(x, axis, keepdims):
    axes = _axes(x, axis)
    n = math.prod(x.shape[a] for a in axes)
    shape = _out_shape(x, axes, keepdims)
    if x.dtype.kind == "f":
        if n == 0:
            return np.full(shape, np.nan, dtype=x.dtype)
        return np.mean(x.astype(np.float64), axis=axes, keepdims=keepdims).astype(x.dtype)
    if n == 0:
        return np.zeros(shape, dtype=x.dtype)
    total = np.sum(x.astype(np.int64), axis=axes, keepdims=keepdims)
    # Truncation toward zero, on exact integers.
    return (np.sign(total) * (np.abs(total) // n)).astype(x.dtype)


def _extreme_ref(fn, empty_float, empty_int):
    def ref(x, axis, keepdims):
        axes = _axes(x, axis)
        if math.prod(x.shape[a] for a in axes) == 0:
            fill = empty_float if x.dtype.kind == "f" else empty_int(x.dtype)
            return np.full(_out_shape(x, axes, keepdims), fill, dtype=x.dtype)
        return np.asarray(fn(x, axis=axes, keepdims=keepdims))

    return ref


_max_ref = _extreme_ref(np.max, -np.inf, lambda d: np.iinfo(d).min)
_min_ref = _extreme_ref(np.min, np.inf, lambda d: np.iinfo(d).max)


def _any_ref(x, axis, keepdims):
    return np.any(x, axis=_axes(x, axis), keepdims=keepdims)


def _all_ref(x, axis, keepdims):
    return np.all(x, axis=_axes(x, axis), keepdims=keepdims)


def _logsumexp_ref(x, axis, keepdims):
    # Direct float64 formula: exp(+-inf) and NaN give what the definition gives;
    # the inputs stay small enough that float64's exp does not overflow.
    axes = _axes(x, axis)
    wide = x.astype(np.float64)
    out = np.log(np.sum(np.exp(wide), axis=axes, keepdims=keepdims))
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64)


_REDUCTIONS = [
    ("reduce_sum", gf.reduce_sum, _sum_ref, ("float32", "float64", "int32", "int64")),
    ("reduce_mean", gf.reduce_mean, _mean_ref, ("float32", "float64", "int32", "int64")),
    ("reduce_max", gf.reduce_max, _max_ref, ("float32", "float64", "int32", "int64")),
    ("reduce_min", gf.reduce_min, _min_ref, ("float32", "float64", "int32", "int64")),
    ("reduce_prod", gf.reduce_prod, _prod_ref, ("float32", "float64", "int32", "int64")),
    ("reduce_any", gf.reduce_any, _any_ref, ("bool",)),
    ("reduce_all", gf.reduce_all, _all_ref, ("bool",)),
    ("reduce_logsumexp", gf.reduce_logsumexp, _logsumexp_ref, ("float32", "float64")),
]

# (shape, axis, keepdims): every axis, one, negative, several, none, size 0 and 1, scalars.
_AXES = [
    ((3, 4, 5), None, False),
    ((3, 4, 5), 1, False),
    ((3, 4, 5), -1, True),
    ((3, 4, 5), [0, -1], False),
    ((3, 4, 5), [2, 0, 2], True),
    ((3, 4), [], False),
    ((0, 3), 0, False),
    ((0, 3), 1, True),
    ((2, 0), None, False),
    ((1,), 0, False),
    ((), None, False),
]

for _name, _fn, _ref, _dts in _REDUCTIONS:
    for _i, _dt in enumerate(_dts):
        for _j, (_shape, _axis, _keep) in enumerate(_AXES):
            # Every dtype on a few axis patterns, the first dtype on all of them.
            if _i > 0 and _j % len(_dts) != _i:
                continue
            CASES.append(
                Case(
                    f"{_name}/{_dt}/{_shape}/axis={_axis}/keepdims={_keep}",
                    lambda x, _f=_fn, _a=_axis, _k=_keep: _f(x, axis=_a, keepdims=_k),
                    lambda x, _r=_ref, _a=_axis, _k=_keep: _r(x, _a, _k),
                    [_shape],
                    [_dt],
                    **(F32_SUM_TOL if _dt == "float32" else {}),
                )
            )

# Deprecated aliases and a constant axis tensor.
CASES += [
    Case(
        "reduce_sum/reduction_indices-keep_dims",
        lambda x: gf.reduce_sum(x, reduction_indices=[1], keep_dims=True),
        lambda x: _sum_ref(x, [1], True),
        [(3, 4)],
        ["float64"],
    ),
    Case(
        "reduce_max/constant-axis-tensor",
        lambda x: gf.reduce_max(x, axis=gf.constant([0, 2])),
        lambda x: _max_ref(x, [0, 2], False),
        [(2, 3, 4)],
        ["int32"],
    ),
    Case(
        "reduce_mean/int-truncates-negative",
        lambda x: gf.reduce_mean(x, axis=1),
        lambda x: _mean_ref(x, 1, False),
        [(3, 2)],
        ["int32"],
        gen=[lambda r, s, d: np.array([[-3, -4], [3, 4], [-7, 0]], d)],
    ),
    Case(
        "reduce_prod/int32-wraps",
        lambda x: gf.reduce_prod(x, axis=0),
        lambda x: np.prod(x, axis=0, dtype=np.int32),
        [(40, 2)],
        ["int32"],
        gen=[lambda r, s, d: r.integers(2, 9, size=s).astype(d)],
    ),
    Case(
        "reduce_logsumexp/large-values-stable",
        lambda x: gf.reduce_logsumexp(x, axis=-1),
        lambda x: _logsumexp_ref(x, -1, False),
        [(3, 6)],
        ["float32"],
        gen=[lambda r, s, d: r.uniform(80, 100, size=s).astype(d)],
    ),
    Case(
        "reduce_logsumexp/infinite-rows",
        lambda x: gf.reduce_logsumexp(x, axis=1),
        lambda x: np.array([-np.inf, np.inf, np.inf, np.nan], np.float32),
        [(4, 3)],
        ["float32"],
        specials=False,
        gen=[
            lambda r, s, d: np.array(
                [[-np.inf] * 3, [np.inf, 1, 2], [np.inf, -np.inf, 0], [np.nan, 1, 2]], d
            )
        ],
    ),
    Case(
        "reduce_logsumexp/int-is-float64",
        lambda x: gf.reduce_logsumexp(x, axis=0),
        lambda x: _logsumexp_ref(x, 0, False),
        [(4, 2)],
        ["int32"],
    ),
    # Unknown rank: negative axes stay as given and are resolved when run.
    Case(
        "reduce_sum/unknown-rank-negative-axis",
        lambda x: gf.reduce_sum(gf.placeholder_with_default(x, shape=None), axis=-1),
        lambda x: _sum_ref(x, -1, False),
        [(2, 3, 4)],
        ["float64"],
    ),
    Case(
        "reduce_mean/unknown-rank-all-axes",
        lambda x: gf.reduce_mean(gf.placeholder_with_default(x, shape=None)),
        lambda x: _mean_ref(x, None, False),
        [(2, 3)],
        ["float64"],
    ),
    Case(
        "reduce_any/unknown-rank-keepdims",
        lambda x: gf.reduce_any(gf.placeholder_with_default(x, shape=None), [0, -1], keepdims=True),
        lambda x: _any_ref(x, [0, -1], True),
        [(2, 3, 4)],
        ["bool"],
    ),
]


def _arg_ref(fn):
    def ref(x, axis, dtype):
        # NumPy's argmax/argmin: first index of the extreme, and the first NaN wins.
        return fn(x, axis=axis).astype(dtype)

    return ref


for _name, _fn, _np in (("argmax", gf.argmax, np.argmax), ("argmin", gf.argmin, np.argmin)):
    for _dt in ("float32", "float64", "int32", "int64", "bool"):
        for _shape, _axis in (
            ((3, 4, 5), None),
            ((3, 4, 5), -1),
            ((4, 1), 1),
            ((7,), 0),
            ((0, 3), 1),
        ):
            CASES.append(
                Case(
                    f"{_name}/{_dt}/{_shape}/axis={_axis}",
                    lambda x, _f=_fn, _a=_axis: _f(x, axis=_a),
                    lambda x, _r=_np, _a=_axis: _arg_ref(_r)(x, 0 if _a is None else _a, np.int64),
                    [_shape],
                    [_dt],
                )
            )
    CASES.append(
        Case(
            f"{_name}/output_type-int32/dimension-alias",
            lambda x, _f=_fn: _f(x, dimension=1, output_type=gf.int32),
            lambda x, _r=_np: _arg_ref(_r)(x, 1, np.int32),
            [(3, 5)],
            ["float32"],
        )
    )
    CASES.append(
        Case(
            f"{_name}/first-nan-and-first-tie",
            lambda x, _f=_fn: _f(x, axis=1),
            lambda x: np.array([1, 0, 2], np.int64),
            [(3, 4)],
            ["float64"],
            specials=False,
            gen=[
                lambda r, s, d: np.array(
                    [[0, np.nan, 3, np.nan], [2, 2, -2, -2], [1, 5, np.nan, 5]], d
                )
            ]
            if _name == "argmax"
            else [
                lambda r, s, d: np.array(
                    [[0, np.nan, -3, np.nan], [-2, -2, 2, 2], [1, -5, np.nan, -5]], d
                )
            ],
        )
    )
