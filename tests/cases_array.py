"""Cases for the array ops: reshape, transpose, joins, splits, slicing, gather, pad, shapes."""

from __future__ import annotations

import numpy as np
from optable import Case, ints_in

import graphflow as gf
from graphflow.ops import array_ops

CASES: list[Case] = []


def _case(id: str, build, ref, shapes, dtypes, **options) -> None:
    CASES.append(Case(id, build, ref, list(shapes), list(dtypes), **options))


# -- reshape -----------------------------------------------------------------------------------
for _shape, _target, _dt in (
    ((2, 3, 4), [4, -1], "float32"),
    ((2, 3, 4), [-1], "int64"),
    ((2, 3, 4), [-1, 2, 3], "float64"),
    ((6,), [2, 3], "bool"),
    ((0, 3), [-1, 3], "float32"),
    ((0, 3), [3, 0], "int32"),
    ((), [1, 1], "float32"),
    ((1, 1), [], "int32"),
):
    _case(
        f"reshape/{_dt}/{_shape}->{_target}",
        lambda x, t=_target: gf.reshape(x, t),
        lambda x, t=_target: np.reshape(x, t),
        [_shape],
        [_dt],
    )
_case(
    "reshape/const-tensor-shape",
    lambda x: gf.reshape(x, gf.constant([3, 2])),
    lambda x: x.reshape(3, 2),
    [(2, 3)],
    ["float32"],
)
_case(
    "reshape/static-shape-object",
    lambda x, y: gf.reshape(x, y.shape) + y,
    lambda x, y: x.reshape(y.shape) + y,
    [(2, 6), (4, 3)],
    ["float32", "float32"],
    none_dims=False,
)

# -- transpose ---------------------------------------------------------------------------------
for _shape, _perm, _dt in (
    ((2, 3, 4), None, "float32"),
    ((2, 3, 4), [1, 0, 2], "int32"),
    ((2, 3, 4), [-1, 0, 1], "float64"),
    ((3,), None, "int64"),
    ((), None, "float32"),
    ((0, 2), [1, 0], "bool"),
    ((1, 5), None, "float32"),
):
    _case(
        f"transpose/{_dt}/{_shape}/{_perm}",
        lambda x, p=_perm: gf.transpose(x, p),
        lambda x, p=_perm: np.transpose(x, p),
        [_shape],
        [_dt],
    )

# -- expand_dims and squeeze -------------------------------------------------------------------
for _shape, _axis, _dt in (
    ((2, 3), 0, "float32"),
    ((2, 3), -1, "int32"),
    ((2, 3), 1, "bool"),
    ((2, 3), -3, "float64"),
    ((), 0, "int64"),
    ((), -1, "float32"),
    ((0,), 1, "float32"),
):
    _case(
        f"expand_dims/{_dt}/{_shape}/{_axis}",
        lambda x, a=_axis: gf.expand_dims(x, a),
        lambda x, a=_axis: np.expand_dims(x, a),
        [_shape],
        [_dt],
    )
for _shape, _axis, _dt, _none in (
    ((1, 3, 1), None, "float32", False),  # None dims: only dims known to be 1 are removed
    ((1, 1), None, "int32", False),
    ((3,), None, "float64", True),
    ((1, 3, 1), [0], "int64", True),
    ((1, 3, 1), -1, "bool", True),
    ((1, 0, 1), [0, -1], "float32", True),
):
    _case(
        f"squeeze/{_dt}/{_shape}/{_axis}",
        lambda x, a=_axis: gf.squeeze(x, a),
        lambda x, a=_axis: np.squeeze(x, tuple(a) if isinstance(a, list) else a),
        [_shape],
        [_dt],
        none_dims=_none,
    )

# -- concat, stack, unstack --------------------------------------------------------------------
for _shapes, _axis, _dt in (
    (((2, 3), (4, 3)), 0, "float32"),
    (((2, 3), (2, 0)), -1, "int32"),
    (((2, 3), (2, 1), (2, 2)), 1, "float64"),
    (((1, 2, 3), (1, 2, 3)), -2, "bool"),
    (((0, 3), (5, 3)), 0, "int64"),
    (((3,),), 0, "float32"),
):
    _case(
        f"concat/{_dt}/{_shapes}/{_axis}",
        lambda *xs, a=_axis: gf.concat(list(xs), a),
        lambda *xs, a=_axis: np.concatenate(xs, a),
        _shapes,
        [_dt] * len(_shapes),
    )
_case(
    "concat/python-list-takes-tensor-dtype",
    lambda x: gf.concat([x, [[1.5, 2.5, 3.5]]], 0),
    lambda x: np.concatenate([x, np.float64([[1.5, 2.5, 3.5]])], 0),
    [(2, 3)],
    ["float64"],
)
for _shapes, _axis, _dt in (
    (((2, 3), (2, 3)), 0, "float32"),
    (((2, 3), (2, 3), (2, 3)), -1, "int32"),
    (((2, 3), (2, 3)), 1, "float64"),
    (((), ()), 0, "bool"),
    (((0, 3), (0, 3)), -2, "int64"),
):
    _case(
        f"stack/{_dt}/{_shapes}/{_axis}",
        lambda *xs, a=_axis: gf.stack(list(xs), axis=a),
        lambda *xs, a=_axis: np.stack(xs, axis=a),
        _shapes,
        [_dt] * len(_shapes),
    )
_case(
    "stack/auto-packed-list",
    lambda x: gf.convert_to_tensor([x, x * 2.0]),
    lambda x: np.stack([x, x * np.float32(2)]),
    [(3,)],
    ["float32"],
)
for _shape, _axis, _num, _dt in (
    ((3, 4), 0, 3, "float32"),
    ((3, 4), -1, 4, "int64"),
    ((2, 1, 3), 1, 1, "bool"),
    ((2, 0), 0, 2, "float64"),
):
    _case(
        f"unstack/{_dt}/{_shape}/{_axis}",
        lambda x, a=_axis, n=_num: array_ops.unstack(x, num=n, axis=a),
        lambda x, a=_axis: [np.take(x, i, axis=a) for i in range(x.shape[a])],
        [_shape],
        [_dt],
    )

# -- split -------------------------------------------------------------------------------------
for _shape, _splits, _axis, _dt in (
    ((6, 4), 3, 0, "float32"),
    ((6, 4), 2, -1, "int32"),
    ((6, 4), [1, -1, 2], 0, "float64"),
    ((2, 5), [0, 4, 1], 1, "int64"),
    ((3,), 1, 0, "bool"),
    ((0, 4), 2, 1, "float32"),
):

    def _split_ref(x, s=_splits, a=_axis):
        if isinstance(s, int):
            return np.split(x, s, axis=a)
        sizes = [x.shape[a] - sum(v for v in s if v >= 0) if v == -1 else v for v in s]
        return np.split(x, np.cumsum(sizes)[:-1], axis=a)

    _case(
        f"split/{_dt}/{_shape}/{_splits}/{_axis}",
        lambda x, s=_splits, a=_axis: gf.split(x, s, axis=a),
        _split_ref,
        [_shape],
        [_dt],
    )

# -- slice, strided_slice and t[...] -----------------------------------------------------------
for _shape, _begin, _size, _dt in (
    ((4, 5), [1, 2], [2, -1], "float32"),
    ((3,), [0], [0], "int32"),
    ((2, 3, 4), [0, 0, 0], [-1, -1, -1], "float64"),
    ((2, 3, 4), [1, 2, 3], [1, 1, 1], "bool"),
    ((0, 3), [0, 1], [0, 2], "int64"),
):

    def _slice_ref(x, b=_begin, s=_size):
        return x[tuple(slice(i, None if n == -1 else i + n) for i, n in zip(b, s))]

    _case(
        f"slice/{_dt}/{_shape}/{_begin}/{_size}",
        lambda x, b=_begin, s=_size: gf.slice(x, b, s),
        _slice_ref,
        [_shape],
        [_dt],
    )

_E = Ellipsis
_KEYS_2D = [
    1,
    -1,
    slice(1, 4),
    slice(None, None, 2),
    slice(None, None, -1),
    slice(-2, None),
    slice(10, None),
    slice(-100, 100),
    slice(4, 0, -2),
    (slice(None), 1),
    (_E, None),
    None,
    (slice(1, -1), slice(None, None, -2)),
    (_E, 0),
    (-1, -1),
    (),
]
_KEYS_3D = [
    (1, _E, slice(None, None, 2)),
    (slice(None), None, slice(1, None)),
    (slice(None, None, -1),) * 3,
    (0, 0, 0),
    (None, _E, None),
    (slice(None), -2, slice(3, 0, -1)),
]
for _shape, _keys, _dt in (
    ((5, 6), _KEYS_2D, "float32"),
    ((2, 3, 4), _KEYS_3D, "int64"),
    ((5, 6), _KEYS_2D[:5], "bool"),
    ((5, 6), _KEYS_2D[5:10], "float64"),
    ((3, 4), _KEYS_3D[:1], "int32"),
):
    for _key in _keys:
        _case(
            f"getitem/{_dt}/{_shape}/{_key!r}",
            lambda x, k=_key: x[k],
            lambda x, k=_key: x[k],
            [_shape],
            [_dt],
        )
for _key in ((slice(None), 1), slice(1, None), (0, slice(None, None, -1))):
    _case(
        f"getitem/size-0/{_key!r}",
        lambda x, k=_key: x[k],
        lambda x, k=_key: x[k],
        [(0, 3)] if _key != (0, slice(None, None, -1)) else [(1, 0)],
        ["float32"],
    )
_case(
    "getitem/const-tensor-index",
    lambda x: x[gf.constant(1), gf.constant(-2) :],
    lambda x: x[1, -2:],
    [(3, 4)],
    ["float32"],
)
_case(
    "getitem/numpy-int-index",
    lambda x: x[np.int64(2)],
    lambda x: x[2],
    [(3, 4)],
    ["int32"],
)
_STRIDED = [
    # (begin, end, strides, masks, the NumPy index it means)
    ([0, 1], [2, 3], [1, 1], {}, (slice(0, 2), slice(1, 3))),
    ([1, 0], [0, 3], [1, 1], {"shrink_axis_mask": 1}, (1, slice(0, 3))),
    (
        [0, 0],
        [0, 0],
        [1, -1],
        {"begin_mask": 3, "end_mask": 3},
        (slice(None), slice(None, None, -1)),
    ),
    (
        [0, 0, 2],
        [0, 0, 4],
        [1, 1, 1],
        {"ellipsis_mask": 1, "new_axis_mask": 2},
        (_E, None, slice(2, 4)),
    ),
    ([-1, 0], [0, 5], [1, 2], {"shrink_axis_mask": 1}, (-1, slice(0, 5, 2))),
    ([3, 0], [0, 0], [-1, 1], {"end_mask": 3}, (slice(3, None, -1), slice(0, None))),
]
for _i, (_b, _e, _s, _masks, _index) in enumerate(_STRIDED):
    _case(
        f"strided_slice/{_i}/{_index!r}",
        lambda x, b=_b, e=_e, s=_s, m=_masks: gf.strided_slice(x, b, e, s, **m),
        lambda x, k=_index: x[k],
        [(4, 5)],
        ["float32"],
    )

# -- gather ------------------------------------------------------------------------------------
for _params, _indices, _axis, _dt, _idt in (
    ((5, 3), (4,), None, "float32", "int32"),
    ((2, 5, 3), (2, 2), 1, "float64", "int64"),
    ((2, 3, 5), (3,), -1, "int32", "int32"),
    ((5, 3), (), 0, "int64", "int64"),
    ((5, 3), (0,), 0, "float32", "int32"),
    ((5,), (2, 3), 0, "bool", "int32"),
    ((5, 0), (2,), 0, "float32", "int64"),
):
    _dim = _params[0 if _axis is None else _axis]
    _case(
        f"gather/{_dt}/{_idt}/{_params}/{_indices}/{_axis}",
        lambda p, i, a=_axis: gf.gather(p, i, axis=a),
        lambda p, i, a=_axis: np.take(p, i, axis=0 if a is None else a),
        [_params, _indices],
        [_dt, _idt],
        gen=[None, ints_in(0, _dim)],
    )
_case(
    "gather/python-indices",
    lambda p: gf.gather(p, [[2, 0], [1, 1]], axis=1),
    lambda p: np.take(p, [[2, 0], [1, 1]], axis=1),
    [(2, 3)],
    ["float32"],
)

# -- one_hot -----------------------------------------------------------------------------------


def _one_hot_ref(indices, depth, on=1.0, off=0.0, axis=-1, dtype=np.float32):
    hot = indices[..., None] == np.arange(depth)
    out = np.where(hot, np.asarray(on, dtype), np.asarray(off, dtype))
    return np.moveaxis(out, -1, axis) if axis != -1 else out


for _shape, _depth, _kwargs, _rkwargs, _idt in (
    ((6,), 3, {}, {}, "int32"),
    ((6,), 4, {"axis": 0}, {"axis": 0}, "int64"),
    ((2, 3), 3, {"axis": 1, "dtype": gf.float64}, {"axis": 1, "dtype": np.float64}, "int32"),
    ((2, 3), 2, {"on_value": 5, "off_value": -1}, {"on": 5, "off": -1, "dtype": np.int32}, "int32"),
    ((4,), 3, {"dtype": "bool"}, {"on": True, "off": False, "dtype": np.bool_}, "int64"),
    ((), 5, {"on_value": 2.5}, {"on": 2.5}, "int32"),
    ((0, 2), 3, {"axis": -1}, {}, "int32"),
    ((3,), 0, {}, {}, "int32"),
):
    _case(
        f"one_hot/{_idt}/{_shape}/{_depth}/{_kwargs}",
        lambda i, d=_depth, k=_kwargs: gf.one_hot(i, d, **k),
        lambda i, d=_depth, k=_rkwargs: _one_hot_ref(i, d, **k),
        [_shape],
        [_idt],
        gen=[ints_in(-1, _depth + 2)],  # includes out-of-range indices: rows of off_value
    )

# -- tile, broadcast_to, pad -------------------------------------------------------------------
for _shape, _multiples, _dt in (
    ((2, 3), [2, 1], "float32"),
    ((2, 3), [1, 0], "int32"),
    ((), [], "float64"),
    ((1,), [5], "bool"),
    ((2, 1, 2), [1, 3, 2], "int64"),
    ((0, 2), [3, 2], "float32"),
):
    _case(
        f"tile/{_dt}/{_shape}/{_multiples}",
        lambda x, m=_multiples: gf.tile(x, m),
        lambda x, m=_multiples: np.tile(x, m),
        [_shape],
        [_dt],
    )
for _shape, _target, _dt in (
    ((3,), [2, 3], "float32"),
    ((2, 1), [2, 4], "int32"),
    ((), [3], "float64"),
    ((1, 0), [2, 0], "bool"),
    ((2, 3), [2, 3], "int64"),
    ((1,), [2, 1, 5], "float32"),
):
    _case(
        f"broadcast_to/{_dt}/{_shape}/{_target}",
        lambda x, t=_target: gf.broadcast_to(x, t),
        lambda x, t=_target: np.broadcast_to(x, t),
        [_shape],
        [_dt],
    )
for _shape, _paddings, _mode, _value, _dt in (
    ((2, 3), [[1, 1], [2, 0]], "CONSTANT", 0, "float32"),
    ((2, 3), [[0, 2], [1, 1]], "constant", 5, "int32"),
    ((3, 4), [[2, 2], [1, 3]], "REFLECT", 0, "float64"),
    ((3, 4), [[3, 0], [0, 4]], "SYMMETRIC", 0, "int64"),
    ((2, 2), [[1, 0], [0, 1]], "CONSTANT", True, "bool"),
    ((0, 2), [[1, 1], [0, 0]], "CONSTANT", 1.5, "float32"),
    ((1, 2), [[0, 0], [1, 1]], "reflect", 0, "float32"),
    ((4,), [[1, 2]], "symmetric", 0, "bool"),
    ((), [], "CONSTANT", 0, "float32"),
):

    def _pad_ref(x, p=_paddings, m=_mode, v=_value):
        if x.ndim == 0:
            return x
        if m.upper() == "CONSTANT":
            return np.pad(x, p, mode="constant", constant_values=np.asarray(v, x.dtype))
        return np.pad(x, p, mode=m.lower())

    _case(
        f"pad/{_dt}/{_shape}/{_paddings}/{_mode}/{_value}",
        lambda x, p=_paddings, m=_mode, v=_value: gf.pad(x, p, mode=m, constant_values=v),
        _pad_ref,
        [_shape],
        [_dt],
    )

# -- identity, stop_gradient, shape, size, rank ------------------------------------------------
for _dt in ("float32", "int64", "bool"):
    _case(f"identity/{_dt}", gf.identity, lambda x: x, [(2, 3)], [_dt])
    _case(f"stop_gradient/{_dt}", gf.stop_gradient, lambda x: x, [(3, 0)], [_dt])
for _shape in ((2, 0, 3), (), (5,)):
    _case(
        f"shape/{_shape}",
        gf.shape,
        lambda x: np.array(x.shape, np.int32),
        [_shape],
        ["float32"],
    )
    _case(
        f"shape/int64/{_shape}",
        lambda x: gf.shape(x, out_type=gf.int64),
        lambda x: np.array(x.shape, np.int64),
        [_shape],
        ["bool"],
    )
    _case(f"size/{_shape}", gf.size, lambda x: np.int32(x.size), [_shape], ["int32"])
    _case(
        f"size/int64/{_shape}",
        lambda x: gf.size(x, out_type="int64"),
        lambda x: np.int64(x.size),
        [_shape],
        ["float64"],
    )
    _case(f"rank/{_shape}", gf.rank, lambda x: np.int32(x.ndim), [_shape], ["int64"])
