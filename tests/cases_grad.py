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
from optable import Case, Generator, ints_in, positive

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


# -- array ops -------------------------------------------------------------------------------
_add(
    GradCase(
        "reshape",
        lambda x: gf.reshape(x, [3, 4]) * gf.constant(np.arange(12.0).reshape(3, 4)),
        [(2, 6)],
    )
)
_add(GradCase("reshape/-1", lambda x: gf.reshape(x, [-1]) ** 2, [(2, 3, 2)]))
_add(GradCase("transpose", lambda x: gf.transpose(x, [2, 0, 1]) ** 2, [(2, 3, 4)]))
_add(GradCase("transpose/default", lambda x: gf.transpose(x) ** 2, [(2, 3)]))
_add(GradCase("expand_dims", lambda x: gf.expand_dims(x, 1) ** 2, [(2, 3)]))
_add(GradCase("squeeze/axis", lambda x: gf.squeeze(x, [1]) ** 2, [(2, 1, 3)]))
_add(GradCase("squeeze/all", lambda x: gf.squeeze(x) ** 2, [(2, 1, 3, 1)], none_dims=False))
_add(GradCase("slice", lambda x: gf.slice(x, [1, 0], [2, -1]) ** 2, [(4, 3)]))
_add(GradCase("slice/sized", lambda x: gf.slice(x, [1, 1], [2, 1]) ** 2, [(4, 3)]))
_add(GradCase("strided_slice/basic", lambda x: x[1:, :2] ** 2, [(3, 4)]))
_add(GradCase("strided_slice/int-newaxis", lambda x: x[1, None, ..., -1] ** 2, [(3, 4, 2)]))
_add(GradCase("strided_slice/step", lambda x: x[::2, ::-1] ** 2, [(5, 3)]))
_add(GradCase("strided_slice/negative-stop", lambda x: x[:-1, 1:-1] ** 2, [(4, 4)]))
_add(
    GradCase("strided_slice/second-order", second_order(lambda x: x[1::2] ** 3), [(4,)], rtol=1e-5)
)
# Several inputs of unknown size along the concat axis are not supported: static shapes.
_add(
    GradCase(
        "concat",
        lambda x, y: gf.concat([x, y, x], axis=1) ** 2,
        [(2, 3), (2, 1)],
        none_dims=False,
    )
)
_add(
    GradCase(
        "concat/batch-none",
        lambda x, y: gf.concat([gf.reshape(x, [-1, 3]), gf.reshape(y, [-1, 1])], axis=1) ** 2,
        [(2, 3), (2, 1)],
    )
)
_add(GradCase("stack", lambda x, y: gf.stack([x, y], axis=1) ** 2, [(2, 3), (2, 3)]))
_add(GradCase("unstack", lambda x: gf.unstack(x, axis=1)[::2], [(2, 3)], none_dims=False))
_add(GradCase("split", lambda x: gf.split(x, [1, 2], axis=1)[1:], [(2, 3)]))
_add(GradCase("split/unused-output", lambda x: gf.split(x, 3, axis=0)[0] ** 2, [(3, 2)]))
for _axis in (0, 1):
    _add(
        GradCase(
            f"gather/axis={_axis}",
            lambda p, i, a=_axis: gf.gather(p, i, axis=a) ** 2,
            [(3, 4), (2, 3)],
            dtypes=["float64", "int32"],
            gen=[None, ints_in(0, 3)],
        )
    )
_add(
    GradCase(
        "gather/second-order",
        lambda p, i: gf.gradients(gf.gather(p, i) ** 3, [p])[0],
        [(3, 2), (4,)],
        dtypes=["float64", "int64"],
        gen=[None, lambda r, s, d: np.array([0, 2, 2, 1], d)],
        rtol=1e-5,
    )
)
for _mode in ("CONSTANT", "REFLECT", "SYMMETRIC"):
    _add(
        GradCase(
            f"pad/{_mode}",
            lambda x, m=_mode: gf.pad(x, [[1, 2], [2, 0]], mode=m) ** 2,
            [(3, 3)],
        )
    )
    _add(
        GradCase(
            f"pad/{_mode}/second-order",
            second_order(lambda x, m=_mode: gf.pad(x, [[1, 0], [0, 2]], mode=m) ** 3),
            [(3, 3)],
            rtol=1e-5,
        )
    )
_add(
    GradCase(
        "pad/constant-value",
        lambda x, c: gf.pad(x, [[1, 1], [0, 1]], constant_values=c) ** 2,
        [(2, 2), ()],
    )
)
_add(GradCase("tile", lambda x: gf.tile(x, [2, 3]) ** 2, [(2, 3)], none_dims=False))
_add(GradCase("tile/batch-none", lambda x: gf.tile(gf.reshape(x, [-1, 3]), [2, 3]) ** 2, [(2, 3)]))
_add(GradCase("broadcast_to", lambda x: gf.broadcast_to(x, [2, 3, 4]) ** 2, [(3, 1)]))
_add(
    GradCase(
        "reshape_to_shape_of",
        lambda x, like: gf.ops.gradients_math.op_output("ReshapeToShapeOf", [x, like]) ** 2,
        [(2, 6), (3, 4)],
    )
)
_add(
    GradCase(
        "reshape/second-order", second_order(lambda x: gf.reshape(x, [6]) ** 3), [(2, 3)], rtol=1e-5
    )
)

# -- nn ops ----------------------------------------------------------------------------------
for _name, _fn, _g in (
    ("relu", gf.nn.relu, away_from(0.0)),
    ("relu6", gf.nn.relu6, away_from(0.0, 6.0)),
    ("leaky_relu", lambda x: gf.nn.leaky_relu(x, alpha=0.1), away_from(0.0)),
    ("elu", gf.nn.elu, away_from(0.0)),
    ("selu", gf.nn.selu, away_from(0.0)),
    ("softplus", gf.nn.softplus, None),
    ("gelu", gf.nn.gelu, None),
    ("gelu/approximate", lambda x: gf.nn.gelu(x, approximate=True), None),
    ("silu", lambda x: gf.nn.silu(x, beta=1.5), None),
):
    _add(GradCase(f"{_name}", _fn, [(3, 4)], gen=[_g]))
    _add(GradCase(f"{_name}/second-order", second_order(_fn), [(3, 4)], gen=[_g], rtol=1e-5))
for _axis in (-1, 0):
    _add(GradCase(f"softmax/axis={_axis}", lambda x, a=_axis: gf.nn.softmax(x, axis=a), [(3, 4)]))
    _add(
        GradCase(
            f"log_softmax/axis={_axis}",
            lambda x, a=_axis: gf.nn.log_softmax(x, axis=a),
            [(3, 4)],
        )
    )
_add(GradCase("softmax/second-order", second_order(gf.nn.softmax), [(2, 3)], rtol=1e-5))
_add(
    GradCase(
        "softmax_cross_entropy_with_logits_v2",
        lambda labels, logits: gf.nn.softmax_cross_entropy_with_logits_v2(
            labels=labels, logits=logits
        ),
        [(3, 4), (3, 4)],
        gen=[positive, None],
    )
)
_add(
    GradCase(
        "softmax_cross_entropy_with_logits_v2/axis=0",
        lambda labels, logits: gf.nn.softmax_cross_entropy_with_logits_v2(
            labels=labels, logits=logits, axis=0
        ),
        [(3, 4), (3, 4)],
        gen=[positive, None],
    )
)
_add(
    GradCase(
        "sparse_softmax_cross_entropy_with_logits",
        lambda logits, labels: gf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits
        ),
        [(3, 4), (3,)],
        dtypes=["float64", "int32"],
        gen=[None, ints_in(0, 4)],
        none_dims=False,  # one_hot needs the number of classes: see sparse-xent/batch-none
    )
)
_add(
    GradCase(
        "sparse_softmax_cross_entropy_with_logits/batch-none",
        lambda logits, labels: gf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=gf.reshape(logits, [-1, 4])
        ),
        [(3, 4), (3,)],
        dtypes=["float64", "int32"],
        gen=[None, ints_in(0, 4)],
    )
)
_add(
    GradCase(
        "sparse_softmax_cross_entropy/second-order",
        lambda logits, labels: (
            gf.gradients(
                gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
                [logits],
            )[0]
            * logits
        ),
        [(2, 3), (2,)],
        dtypes=["float64", "int64"],
        gen=[None, ints_in(0, 3)],
        rtol=1e-5,
        none_dims=False,
    )
)
_add(GradCase("bias_add", gf.nn.bias_add, [(2, 3, 4), (4,)]))

_CONVS = [
    ("conv2d/SAME", (1, 5, 5, 2), (3, 3, 2, 3), {"strides": 1, "padding": "SAME"}),
    ("conv2d/VALID-stride2", (2, 6, 5, 2), (3, 2, 2, 2), {"strides": 2, "padding": "VALID"}),
    (
        "conv2d/SAME-stride2-dilated",
        (1, 6, 6, 1),
        (2, 2, 1, 2),
        {"strides": [1, 2, 2, 1], "padding": "SAME", "dilations": 2},
    ),
    (
        "conv2d/explicit",
        (1, 4, 4, 1),
        (2, 3, 1, 2),
        {"strides": 1, "padding": [[0, 0], [1, 0], [2, 1], [0, 0]]},
    ),
]
for _name, _sx, _sf, _kw in _CONVS:
    _add(
        GradCase(
            _name,
            lambda x, f, kw=_kw: gf.nn.conv2d(x, f, **kw),
            [_sx, _sf],
            none_dims=False,
        )
    )
_add(
    GradCase(
        "conv2d/second-order",
        lambda x, f: gf.gradients(gf.nn.conv2d(x, f, 2, "SAME") ** 2, [x, f]),
        [(1, 4, 4, 1), (2, 2, 1, 2)],
        none_dims=False,
        rtol=1e-5,
    )
)
for _pool in ("max", "avg"):
    for _padding, _k, _s in (("VALID", 2, 2), ("SAME", 3, 2), ("SAME", 2, 1)):
        _add(
            GradCase(
                f"{_pool}_pool/{_padding}/k={_k}/s={_s}",
                lambda x, p=_pool, pad=_padding, k=_k, s=_s: getattr(gf.nn, f"{p}_pool2d")(
                    x, k, s, pad
                ),
                [(2, 5, 4, 2)],
                gen=[distinct],
                none_dims=False,
            )
        )
    _add(
        GradCase(
            f"{_pool}_pool/second-order",
            lambda x, p=_pool: gf.gradients(
                getattr(gf.nn, f"{p}_pool2d")(x * x, 2, 1, "SAME") ** 2, [x]
            )[0],
            [(1, 3, 3, 1)],
            gen=[lambda r, s, d: (r.permutation(9).reshape(s) * 0.3 + 0.5).astype(d)],
            none_dims=False,
            rtol=1e-5,
        )
    )
_add(
    GradCase(
        "max_pool/third-order",
        lambda x: gf.gradients(
            gf.gradients(gf.nn.max_pool2d(x, 2, 1, "VALID") ** 3, [x])[0] ** 2, [x]
        )[0],
        [(1, 3, 3, 1)],
        gen=[distinct],
        none_dims=False,
        rtol=1e-5,
    )
)
_add(
    GradCase(
        "sum_to_shape_of",
        lambda x, like: gf.ops.gradients_math.op_output("SumToShapeOf", [x, like]) ** 2,
        [(2, 3, 4), (3, 1)],
    )
)


# -- forward cases of the backward ops, against NumPy written for the tests ------------------
def _scatter_ref(like, g, indices, axis):
    out = np.zeros(like.shape, g.dtype)
    g = np.moveaxis(g.reshape((*like.shape[:axis], -1, *like.shape[axis + 1 :])), axis, 0)
    for k, i in enumerate(indices.reshape(-1)):
        index = [slice(None)] * like.ndim
        index[axis] = i
        out[tuple(index)] += g[k]
    return out


CASES.append(
    Case(
        "reshape_to_shape_of",
        lambda x, like: gf.ops.gradients_math.op_output("ReshapeToShapeOf", [x, like]),
        lambda x, like: x.reshape(like.shape),
        [(2, 6), (3, 4)],
        ["float32", "int32"],
    )
)


def _ssg_ref(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    out = np.zeros(like.shape, g.dtype)
    out[1::2, -1] = g
    return out


def _mirror_pad_grad_ref(g: np.ndarray) -> np.ndarray:
    # REFLECT paddings ((1, 2), (2, 0)) of a 3 x 3 input: g is 6 x 5.
    out = np.zeros((3, 3), g.dtype)
    for r in range(6):
        for c in range(5):
            out[_reflect(r - 1, 3), _reflect(c - 2, 3)] += g[r, c]
    return out


def _reflect(i: int, n: int) -> int:
    """The input index that cell i (may be outside [0, n)) of a REFLECT pad copies."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


CASES.append(
    Case(
        "strided_slice_grad",
        lambda g, like: gf.ops.gradients_math.op_output(
            "StridedSliceGrad", [g, like], {"spec": (("slice", 1, None, 2), ("int", -1))}
        ),
        lambda g, like: _ssg_ref(g, like),
        [(2,), (4, 3)],
        ["float64", "float64"],
    )
)
CASES.append(
    Case(
        "mirror_pad_grad/REFLECT",
        lambda g: gf.ops.gradients_math.op_output(
            "MirrorPadGrad", [g], {"paddings": ((1, 2), (2, 0)), "mode": "REFLECT"}
        ),
        _mirror_pad_grad_ref,
        [(6, 5)],
        ["float64"],
    )
)
CASES.append(
    Case(
        "gather_v2_grad/axis=1",
        lambda g, i, like: gf.ops.gradients_math.op_output(
            "GatherV2Grad", [g, i, like], {"axis": 1}
        ),
        lambda g, i, like: _scatter_ref(like, g, i, 1),
        [(2, 2, 3, 2), (2, 3), (2, 4, 2)],
        ["float32", "int32", "float32"],
        gen=[None, ints_in(0, 4), None],
        specials=False,
    )
)


def _windows_ref(shape, kernel, strides, dilations, padding):
    """For each output (oh, ow) and kernel cell (i, j): the input cell read, or None."""
    out = []
    for dim in range(2):
        size, k, s, d = shape[1 + dim], kernel[dim], strides[dim], dilations[dim]
        eff = (k - 1) * d + 1
        if padding == "SAME":
            o = -(-size // s)
            before = max((o - 1) * s + eff - size, 0) // 2
        else:
            o = (size - eff) // s + 1
            before = 0
        out.append((o, before))
    (oh, pt), (ow, pl) = out
    for a in range(oh):
        for b in range(ow):
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    r = a * strides[0] + i * dilations[0] - pt
                    c = b * strides[1] + j * dilations[1] - pl
                    inside = 0 <= r < shape[1] and 0 <= c < shape[2]
                    yield a, b, i, j, (r, c) if inside else None


def _conv_input_ref(x, f, g, strides, dilations, padding):
    out = np.zeros(x.shape)
    for a, b, i, j, cell in _windows_ref(x.shape, f.shape[:2], strides, dilations, padding):
        if cell is not None:
            out[:, cell[0], cell[1], :] += g[:, a, b, :] @ f[i, j].T
    return out.astype(g.dtype)


def _conv_filter_ref(x, f, g, strides, dilations, padding):
    out = np.zeros(f.shape)
    for a, b, i, j, cell in _windows_ref(x.shape, f.shape[:2], strides, dilations, padding):
        if cell is not None:
            out[i, j] += x[:, cell[0], cell[1], :].T @ g[:, a, b, :]
    return out.astype(g.dtype)


def _pool_grad_ref(kind, x, g, k, s, padding):
    out = np.zeros(x.shape)
    cells = {}
    for a, b, _i, _j, cell in _windows_ref(x.shape, (k, k), (s, s), (1, 1), padding):
        if cell is not None:
            cells.setdefault((a, b), []).append(cell)
    for (a, b), window in cells.items():
        if kind == "avg":
            for r, c in window:
                out[:, r, c, :] += g[:, a, b, :] / len(window)
            continue
        values = np.stack([x[:, r, c, :] for r, c in window])  # (cells, N, C)
        first = np.argmax(values, axis=0)
        for n in range(x.shape[0]):
            for ch in range(x.shape[3]):
                r, c = window[first[n, ch]]
                out[n, r, c, ch] += g[n, a, b, ch]
    return out.astype(g.dtype)


_CONV_ATTRS = {
    "strides": (2, 1),
    "dilations": (1, 2),
    "padding": "SAME",
    "explicit_paddings": (),
}
CASES.append(
    Case(
        "conv2d_backprop_input",
        lambda x, f, g: gf.ops.gradients_math.op_output(
            "Conv2DBackpropInput", [x, f, g], _CONV_ATTRS
        ),
        lambda x, f, g: _conv_input_ref(x, f, g, (2, 1), (1, 2), "SAME"),
        [(2, 5, 4, 2), (2, 3, 2, 3), (2, 3, 4, 3)],
        ["float64"] * 3,
        specials=False,  # the order of the products decides where Inf * 0 lands
    )
)
CASES.append(
    Case(
        "conv2d_backprop_filter",
        lambda x, f, g: gf.ops.gradients_math.op_output(
            "Conv2DBackpropFilter", [x, f, g], _CONV_ATTRS
        ),
        lambda x, f, g: _conv_filter_ref(x, f, g, (2, 1), (1, 2), "SAME"),
        [(2, 5, 4, 2), (2, 3, 2, 3), (2, 3, 4, 3)],
        ["float64"] * 3,
        specials=False,  # the order of the products decides where Inf * 0 lands
    )
)
for _padding, _k, _s, _out in (("SAME", 3, 2, (3, 2)), ("VALID", 2, 1, (4, 3))):
    _attrs = {"ksize": (_k, _k), "strides": (_s, _s), "padding": _padding}
    CASES.append(
        Case(
            f"max_pool_grad/{_padding}",
            lambda x, y, g, a=_attrs: gf.ops.gradients_math.op_output("MaxPoolGrad", [x, y, g], a),
            lambda x, y, g, k=_k, s=_s, p=_padding: _pool_grad_ref("max", x, g, k, s, p),
            [(2, 5, 4, 2), (2, *_out, 2), (2, *_out, 2)],
            ["float64"] * 3,
            gen=[distinct, None, None],
            specials=False,
        )
    )
    CASES.append(
        Case(
            f"avg_pool_grad/{_padding}",
            lambda x, g, a=_attrs: gf.ops.gradients_math.op_output("AvgPoolGrad", [x, g], a),
            lambda x, g, k=_k, s=_s, p=_padding: _pool_grad_ref("avg", x, g, k, s, p),
            [(2, 5, 4, 2), (2, *_out, 2)],
            ["float32", "float32"],
        )
    )
    CASES.append(
        Case(
            f"max_pool_grad_grad/{_padding}",
            lambda x, y, gg, a=_attrs: gf.ops.gradients_math.op_output(
                "MaxPoolGradGrad", [x, y, gg], a
            ),
            # Linear in gg: the adjoint of MaxPoolGrad, i.e. <gg, MaxPoolGrad(e_o)> per output.
            lambda x, y, gg, k=_k, s=_s, p=_padding, o=_out: np.array(
                [
                    np.sum(gg * _pool_grad_ref("max", x, e.reshape(2, *o, 2), k, s, p))
                    for e in np.eye(2 * o[0] * o[1] * 2)
                ]
            ).reshape(2, *o, 2),
            [(2, 5, 4, 2), (2, *_out, 2), (2, 5, 4, 2)],
            ["float64"] * 3,
            gen=[distinct, None, None],
            specials=False,
        )
    )
