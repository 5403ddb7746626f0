"""Gradient tables: GRAD_CASES (checked against finite differences) and CASES (forward ops).

GRAD_CASES: each `GradCase` builds a function of float64 placeholders;
tests/test_gradients.py compares `gf.gradients` of it with central finite
differences, with static and with all-None placeholder shapes.

CASES: the op-table cases (tests/optable.py) of the ops that exist for the
backward graph (SumToShapeOf, ...); tests/test_ops_table.py runs them with
every other op's cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from optable import Case, Generator, positive

import graphflow as gf

CASES: list[Case] = []
GRAD_CASES: list[GradCase] = []


@dataclasses.dataclass
class GradCase:
    """One differentiable function of placeholders, checked against finite differences.

    Attributes:
      id: "op/what", unique.
      build: gets one placeholder per input; returns a Tensor or a list of them.
      shapes: one shape per input.
      dtypes: one dtype name per input (default all float64); only float
        inputs are differentiated.
      gen: optional input generators (None entries: standard normal).
      none_dims: also check the gradient with all-None placeholder shapes.
      rtol, atol: tolerances of the comparison with finite differences.
      eps: the step of the finite differences (larger for float32 results).
    """

    id: str
    build: Callable[..., Any]
    shapes: Sequence[tuple[int, ...]]
    dtypes: Sequence[str] | None = None
    gen: Sequence[Generator | None] | None = None
    none_dims: bool = True
    rtol: float = 1e-6
    atol: float = 1e-8
    eps: float = 1e-6

    @property
    def input_dtypes(self) -> list[str]:
        return list(self.dtypes) if self.dtypes is not None else ["float64"] * len(self.shapes)


def away_from(*points: float, margin: float = 0.05) -> Generator:
    """Standard normal floats at least `margin` away from the kinks at `points`."""

    def gen(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        x = rng.standard_normal(shape) * 2
        for p in points:
            near = np.abs(x - p) < margin
            x = np.where(near, p + np.where(x >= p, margin, -margin) * 2, x)
        return x.astype(dtype)

    return gen


def distinct(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A permutation of well-separated values: no ties for max, min, sorting kinks."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - n * 0.15).reshape(shape).astype(dtype)


def _add(case: GradCase) -> None:
    GRAD_CASES.append(case)


def second_order(fn: Callable[[gf.Tensor], gf.Tensor]) -> Callable[[gf.Tensor], gf.Tensor]:
    """x -> the gradient of fn at x: its own gradient is fn's second derivative."""

    def build(x: gf.Tensor) -> gf.Tensor:
        (g,) = gf.gradients(fn(x), [x])
        return g

    return build


# -- elementwise math ------------------------------------------------------------------------
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 3))]

_BINARY = [
    ("add", gf.add, None),
    ("subtract", gf.subtract, None),
    ("multiply", gf.multiply, None),
    ("divide", gf.divide, [None, positive]),
    ("maximum", gf.maximum, [distinct, None]),
    ("minimum", gf.minimum, [distinct, None]),
    ("squared_difference", gf.squared_difference, None),
    ("pow", gf.pow, [positive, None]),
    ("floormod", gf.floormod, [away_from(0.0), positive]),
]
for _name, _fn, _gen in _BINARY:
    for _sx, _sy in BROADCAST_SHAPES:
        _add(GradCase(f"{_name}/{_sx}x{_sy}", _fn, [_sx, _sy], gen=_gen))
_add(
    GradCase(
        "floordiv/no-gradient",
        lambda x, y: gf.floordiv(x, y) + x,
        [(3,), (3,)],
        gen=[away_from(0.0), positive],
    )
)

_UNARY = [
    ("negative", gf.negative, None),
    ("abs", gf.abs, away_from(0.0)),
    ("square", gf.square, None),
    ("sqrt", gf.sqrt, positive),
    ("rsqrt", gf.rsqrt, positive),
    ("reciprocal", gf.reciprocal, positive),
    ("exp", gf.exp, None),
    ("expm1", gf.expm1, None),
    ("log", gf.log, positive),
    ("log1p", gf.log1p, positive),
    ("sin", gf.sin, None),
    ("cos", gf.cos, None),
    ("tanh", gf.tanh, None),
    ("sigmoid", gf.sigmoid, None),
    ("erf", gf.erf, None),
    ("identity", gf.identity, None),
]
for _name, _fn, _g in _UNARY:
    _add(GradCase(f"{_name}", _fn, [(2, 3)], gen=[_g]))
    # Second order: the gradient of the gradient.
    if _name not in ("identity", "negative", "abs"):
        _add(GradCase(f"{_name}/second-order", second_order(_fn), [(2, 3)], gen=[_g], rtol=1e-5))
_add(
    GradCase(
        "multiply/second-order",
        lambda x, y: gf.gradients(x * x * y, [x])[0] * y,
        [(2, 3), (3,)],
    )
)
_add(GradCase("where", lambda c, x, y: gf.where(c > 0.0, x, y), [(3, 4), (3, 4), (4,)]))
_add(GradCase("where/broadcast", lambda c, x, y: gf.where(c > 0.0, x, y), [(3, 1), (1, 4), ()]))
_add(
    GradCase(
        "clip_by_value",
        lambda x, lo, hi: gf.clip_by_value(x, lo, hi),
        [(3, 4), (4,), ()],
        gen=[distinct, lambda r, s, d: np.full(s, -1.01, d), lambda r, s, d: np.full(s, 1.03, d)],
    )
)
# A float32 result is linear in x here, so a large step is exact up to float32 rounding.
_add(
    GradCase(
        "cast/float64-to-float32",
        lambda x: gf.cast(x, gf.float32) * 3.0,
        [(3,)],
        rtol=1e-4,
        atol=1e-4,
        eps=1e-2,
    )
)
_add(
    GradCase(
        "cast/to-int-stops",
        lambda x: gf.cast(gf.cast(x * 3.0, gf.int32), gf.float64) + x,
        [(3,)],
        gen=[away_from(0.0)],
    )
)
_add(
    GradCase("fill", lambda x: gf.fill([2, 3], x) * gf.constant(np.arange(6.0).reshape(2, 3)), [()])
)
_add(
    GradCase(
        "placeholder_with_default",
        lambda x: gf.placeholder_with_default(x * 2.0, [3]) ** 2,
        [(3,)],
        none_dims=False,
    )
)

# -- reductions ------------------------------------------------------------------------------
for _name, _fn, _g in (
    ("reduce_sum", gf.reduce_sum, None),
    ("reduce_mean", gf.reduce_mean, None),
    ("reduce_max", gf.reduce_max, distinct),
    ("reduce_min", gf.reduce_min, distinct),
    ("reduce_prod", gf.reduce_prod, None),
    ("reduce_logsumexp", gf.reduce_logsumexp, None),
):
    for _axis in (None, 1, [0, 2]):
        for _keep in (False, True):
            _add(
                GradCase(
                    f"{_name}/axis={_axis}/keepdims={_keep}",
                    lambda x, f=_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
                    [(2, 3, 2)],
                    gen=[_g],
                )
            )
_add(
    GradCase(
        "reduce_prod/zeros",
        lambda x: gf.reduce_prod(x * gf.constant([[0.0, 1, 1], [0, 0, 1], [1, 1, 1]]), axis=1),
        [(3, 3)],
    )
)
# Tied maxima: the central difference of a two-way tie is 1/2 per element,
# which is TF's even split.
_add(
    GradCase(
        "reduce_max/ties-split",
        lambda x: gf.reduce_max(x, axis=1),
        [(2, 3)],
        gen=[lambda r, s, d: np.array([[1.0, 3, 3], [2, 5, 4]], d)],
    )
)
_add(GradCase("l2_loss", gf.nn.l2_loss, [(3, 4)]))

# -- matmul ----------------------------------------------------------------------------------
for _ta in (False, True):
    for _tb in (False, True):
        _sa = (4, 3) if _ta else (3, 4)
        _sb = (2, 4) if _tb else (4, 2)
        _add(
            GradCase(
                f"matmul/ta={_ta}/tb={_tb}",
                lambda a, b, ta=_ta, tb=_tb: gf.matmul(a, b, transpose_a=ta, transpose_b=tb),
                [_sa, _sb],
            )
        )
_add(GradCase("matmul/batched", gf.matmul, [(2, 3, 4), (2, 4, 2)]))
_add(GradCase("matmul/batch-broadcast", gf.matmul, [(2, 1, 3, 4), (3, 4, 2)]))
_add(
    GradCase(
        "matmul/batched-transposed",
        lambda a, b: gf.matmul(a, b, transpose_a=True, transpose_b=True),
        [(2, 4, 3), (2, 2, 4)],
    )
)


# -- forward cases of the ops made for the backward graph --------------------------------------
def _sum_to_shape_ref(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    lead = x.ndim - like.ndim
    axes = [*range(lead)]
    axes += [i + lead for i, d in enumerate(like.shape) if d == 1 and x.shape[i + lead] != 1]
    return np.sum(x, axis=tuple(axes), keepdims=True).reshape(like.shape)


for _sx, _sl in (
    ((2, 3, 4), (3, 1)),
    ((3, 4), (3, 4)),
    ((2, 3), ()),
    ((1, 4), (1, 1)),
    ((0, 3), (3,)),
):
    CASES.append(
        Case(
            f"sum_to_shape_of/{_sx}->{_sl}",
            lambda x, like: gf.ops.gradients_math.sum_to_shape_of(x, like),
            _sum_to_shape_ref,
            [_sx, _sl],
            ["float64", "float32"],
        )
    )
