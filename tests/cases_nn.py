"""Cases for matmul and the nn ops: activations, softmax, losses, bias_add, moments, conv, pools.

The references are plain NumPy written for the tests, in float64 and then
rounded: matmul with einsum, conv2d and the pools with loops over output
positions that only read the cells inside the input (no padded copy).
"""

from __future__ import annotations

import math

import numpy as np
from optable import Case, ints_in

import graphflow as gf

CASES: list[Case] = []

# float32 results of sums taken in another order than the float64 reference.
F32_TOL = {"rtol": 1e-4, "atol": 1e-4}


def _tol(dtype: str) -> dict:
    return F32_TOL if dtype == "float32" else {}


def _f64(fn):
    """A float64 reference rounded to the input's dtype."""

    def ref(x, *args):
        return fn(x.astype(np.float64), *args).astype(x.dtype)

    return ref


# -- matmul ----------------------------------------------------------------------------------
def _matmul_ref(ta: bool, tb: bool):
    def ref(a, b):
        if ta:
            a = np.swapaxes(a, -1, -2)
        if tb:
            b = np.swapaxes(b, -1, -2)
        dtype = np.result_type(a, b)
        if dtype.kind == "f":
            out = np.einsum("...ij,...jk->...ik", a.astype(np.float64), b.astype(np.float64))
            return out.astype(dtype)
        return np.einsum("...ij,...jk->...ik", a.astype(dtype), b.astype(dtype))

    return ref


_MATMUL_SHAPES = [
    ((2, 3), (3, 4), False, False),
    ((3, 2), (3, 4), True, False),
    ((2, 3), (4, 3), False, True),
    ((3, 2), (4, 3), True, True),
    ((5, 2, 3), (3, 4), False, False),
    ((1, 2, 3), (4, 3, 5), False, False),
    ((2, 1, 3, 4), (3, 5, 4), False, True),
    ((0, 3), (3, 4), False, False),
    ((2, 0), (0, 4), False, False),
    ((1, 1), (1, 1), False, False),
    ((3, 0, 2), (2, 4), False, False),
]

for _dt in ("float32", "float64", "int32", "int64"):
    for _k, (_sa, _sb, _ta, _tb) in enumerate(_MATMUL_SHAPES):
        if _dt in ("int32", "int64") and _k % 3 != 0:
            continue
        CASES.append(
            Case(
                f"matmul/{_dt}/{_sa}@{_sb}/ta={_ta}/tb={_tb}",
                lambda a, b, _ta=_ta, _tb=_tb: gf.matmul(a, b, transpose_a=_ta, transpose_b=_tb),
                _matmul_ref(_ta, _tb),
                [_sa, _sb],
                [_dt, _dt],
                **_tol(_dt),
            )
        )
CASES += [
    Case(
        "matmul/adjoint",
        lambda a, b: gf.matmul(a, b, adjoint_a=True, adjoint_b=True),
        _matmul_ref(True, True),
        [(4, 3), (2, 4)],
        ["float64", "float64"],
    ),
    Case(
        "matmul/promotes-int32-float32",
        gf.matmul,
        _matmul_ref(False, False),
        [(2, 3), (3, 2)],
        ["int32", "float32"],
    ),
    Case(
        "matmul/operator-batched",
        lambda a, b: a @ b,
        _matmul_ref(False, False),
        [(2, 2, 3), (2, 3, 1)],
        ["float64", "float64"],
    ),
]


# -- activations -----------------------------------------------------------------------------
_erf = np.vectorize(math.erf, otypes=[np.float64])
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _relu(x):
    return np.where(x < 0, 0, x).astype(x.dtype)


def _relu6(x):
    return np.where(x < 0, 0, np.where(x > 6, 6, x)).astype(x.dtype)


def _softplus(x):
    return np.where(x > 30, x, np.log1p(np.exp(np.minimum(x, 30))))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


_ACTIVATIONS = [
    ("relu", gf.nn.relu, _relu, ("float32", "float64", "int32", "int64")),
    ("relu6", gf.nn.relu6, _relu6, ("float32", "int32")),
    (
        "leaky_relu",
        gf.nn.leaky_relu,
        _f64(lambda x: np.where(x > 0, x, 0.2 * x)),
        ("float32", "float64"),
    ),
    (
        "leaky_relu/alpha=0.01",
        lambda x: gf.nn.leaky_relu(x, alpha=0.01),
        _f64(lambda x: np.where(x > 0, x, 0.01 * x)),
        ("float32",),
    ),
    ("elu", gf.nn.elu, _f64(lambda x: np.where(x > 0, x, np.exp(x) - 1)), ("float32", "float64")),
    (
        "selu",
        gf.nn.selu,
        _f64(lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1))),
        ("float32", "float64"),
    ),
    ("softplus", gf.nn.softplus, _f64(_softplus), ("float32", "float64")),
    (
        "gelu",
        gf.nn.gelu,
        _f64(lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
        ("float32", "float64"),
    ),
    (
        "gelu/approximate",
        lambda x: gf.nn.gelu(x, approximate=True),
        _f64(_gelu_tanh),
        ("float32", "float64"),
    ),
    ("silu", gf.nn.silu, _f64(lambda x: x / (1 + np.exp(-x))), ("float32", "float64")),
    (
        "silu/beta=1.5",
        lambda x: gf.nn.silu(x, beta=1.5),
        _f64(lambda x: x / (1 + np.exp(-1.5 * x))),
        ("float64",),
    ),
    ("swish", gf.nn.swish, _f64(lambda x: x / (1 + np.exp(-x))), ("float32",)),
]

for _name, _fn, _ref, _dts in _ACTIVATIONS:
    for _dt in _dts:
        for _shape in ((3, 4), (0, 2), (1,), (), (2, 3, 5)):
            CASES.append(
                Case(
                    f"{_name}/{_dt}/{_shape}",
                    _fn,
                    _ref,
                    [_shape],
                    [_dt],
                )
            )
CASES.append(
    Case(
        "softplus/large-magnitudes",
        gf.nn.softplus,
        _f64(_softplus),
        [(6,)],
        ["float32"],
        gen=[lambda r, s, d: np.array([-200, -90, -20, 20, 90, 200], d)],
    )
)


# -- softmax ---------------------------------------------------------------------------------
def _rows(x, axis):
    """Views of x with `axis` last, and a function putting a result back."""
    moved = np.moveaxis(x, axis, -1)
    return moved, lambda y: np.moveaxis(y, -1, axis)


def _softmax_ref(axis=-1, log=False):
    def ref(x):
        wide = x.astype(np.float64)
        rows, back = _rows(wide, axis)
        out = np.empty_like(rows)
        for idx in np.ndindex(rows.shape[:-1]):
            row = rows[idx]
            top = row.max() if row.size else 0.0
            logz = top + np.log(np.sum(np.exp(row - top)))
            out[idx] = row - logz if log else np.exp(row - top) / np.sum(np.exp(row - top))
        return back(out).astype(x.dtype)

    return ref


for _name, _fn, _log in (
    ("softmax", gf.nn.softmax, False),
    ("log_softmax", gf.nn.log_softmax, True),
):
    for _dt in ("float32", "float64"):
        for _shape, _axis in (
            ((3, 5), None),
            ((2, 3, 4), 1),
            ((2, 3, 4), -3),
            ((4,), 0),
            ((0, 3), -1),
            ((3, 1), -1),
        ):
            CASES.append(
                Case(
                    f"{_name}/{_dt}/{_shape}/axis={_axis}",
                    lambda x, _f=_fn, _a=_axis: _f(x, axis=_a),
                    _softmax_ref(-1 if _axis is None else _axis, _log),
                    [_shape],
                    [_dt],
                    **_tol(_dt),
                )
            )
    CASES.append(
        Case(
            f"{_name}/large-logits-stable",
            lambda x, _f=_fn: _f(x, dim=-1),
            _softmax_ref(-1, _log),
            [(2, 4)],
            ["float32"],
            gen=[lambda r, s, d: r.uniform(500, 1000, size=s).astype(d)],
            **F32_TOL,
        )
    )


# -- cross-entropy ---------------------------------------------------------------------------
def _sparse_xent_ref(logits, labels):
    wide = logits.astype(np.float64)
    out = np.empty(labels.shape, np.float64)
    for idx in np.ndindex(labels.shape):
        row = wide[idx]
        top = row.max()
        out[idx] = top + np.log(np.sum(np.exp(row - top))) - row[labels[idx]]
    return out.astype(logits.dtype)


def _xent_ref(axis):
    def ref(logits, labels):
        log_p = _softmax_ref(axis, log=True)(logits.astype(np.float64))
        return (-np.sum(labels * log_p, axis=axis)).astype(logits.dtype)

    return ref


for _ldt in ("int32", "int64"):
    for _dt in ("float32", "float64"):
        for _shape in ((4, 5), (2, 3, 6), (1, 1), (0, 3)):
            CASES.append(
                Case(
                    f"sparse_softmax_cross_entropy_with_logits/{_dt}/{_ldt}/{_shape}",
                    lambda x, y: gf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x),
                    _sparse_xent_ref,
                    [_shape, _shape[:-1]],
                    [_dt, _ldt],
                    gen=[None, ints_in(0, _shape[-1])],
                    **_tol(_dt),
                )
            )

for _fn_name in ("softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits_v2"):
    _fn = getattr(gf.nn, _fn_name)
    for _dt in ("float32", "float64"):
        for _shape, _axis in (((4, 5), None), ((2, 3, 4), 1), ((3, 1), -1), ((0, 4), None)):
            CASES.append(
                Case(
                    f"{_fn_name}/{_dt}/{_shape}/axis={_axis}",
                    lambda x, y, _f=_fn, _a=_axis: _f(labels=y, logits=x, axis=_a),
                    _xent_ref(-1 if _axis is None else _axis),
                    [_shape, _shape],
                    [_dt, _dt],
                    **_tol(_dt),
                )
            )
CASES.append(
    Case(
        "softmax_cross_entropy_with_logits/dim-alias",
        lambda x, y: gf.nn.softmax_cross_entropy_with_logits(labels=y, logits=x, dim=0),
        _xent_ref(0),
        [(3, 2), (3, 2)],
        ["float64", "float64"],
    )
)


# -- bias_add, moments, l2_loss --------------------------------------------------------------
for _dt in ("float32", "float64", "int32"):
    for _shape in ((2, 3), (2, 4, 4, 3), (0, 5), (3, 1)):
        CASES.append(
            Case(
                f"bias_add/{_dt}/{_shape}",
                gf.nn.bias_add,
                lambda x, b: x + b,
                [_shape, _shape[-1:]],
                [_dt, _dt],
            )
        )
CASES += [
    Case(
        "bias_add/NCHW",
        lambda x, b: gf.nn.bias_add(x, b, data_format="NCHW"),
        lambda x, b: x + b[:, None, None],
        [(2, 3, 4, 5), (3,)],
        ["float32", "float32"],
    ),
    Case(
        "bias_add/NCHW-rank3",
        lambda x, b: gf.nn.bias_add(x, b, data_format="NCHW"),
        lambda x, b: x + b[:, None],
        [(2, 3, 4), (3,)],
        ["float64", "float64"],
    ),
]


def _moments_ref(axes, keepdims):
    def ref(x):
        wide = x.astype(np.float64)
        mean = wide.mean(axis=axes, keepdims=True)
        var = ((wide - mean) ** 2).mean(axis=axes, keepdims=keepdims)
        if not keepdims:
            mean = mean.reshape(var.shape)
        return mean.astype(x.dtype), var.astype(x.dtype)

    return ref


for _shape, _axes, _keep in (
    ((4, 3), [0], False),
    ((2, 3, 4, 5), [0, 1, 2], False),
    ((2, 3, 4), [-1], True),
    ((5, 1), [0, 1], False),
):
    for _dt in ("float32", "float64"):
        CASES.append(
            Case(
                f"moments/{_dt}/{_shape}/axes={_axes}/keepdims={_keep}",
                lambda x, _a=_axes, _k=_keep: gf.nn.moments(x, _a, keepdims=_k),
                _moments_ref(tuple(_axes), _keep),
                [_shape],
                [_dt],
                **_tol(_dt),
            )
        )
CASES.append(
    Case(
        "moments/keep_dims-alias",
        lambda x: gf.nn.moments(x, axes=[1], keep_dims=True),
        _moments_ref((1,), True),
        [(3, 4)],
        ["float64"],
    )
)

for _dt in ("float32", "float64"):
    for _shape in ((3, 4), (0,), (), (2, 3, 5)):
        CASES.append(
            Case(
                f"l2_loss/{_dt}/{_shape}",
                gf.nn.l2_loss,
                _f64(lambda x: np.asarray(np.sum(x * x) / 2)),
                [_shape],
                [_dt],
                **_tol(_dt),
            )
        )


# -- conv2d and pooling ----------------------------------------------------------------------
def _geometry(size, kernel, stride, dilation, padding):
    """(output size, pad before) by TF's formulas."""
    reach = (kernel - 1) * dilation + 1
    if padding == "VALID":
        return (size - reach) // stride + 1, 0
    if isinstance(padding, tuple):
        before, after = padding
        return (size + before + after - reach) // stride + 1, before
    out = -(-size // stride)
    return out, max((out - 1) * stride + reach - size, 0) // 2


def _conv_ref(strides, padding, dilations=(1, 1)):
    """Loops over output pixels and filter taps; taps outside the input contribute 0."""

    def ref(x, f):
        n, h, w, _ = x.shape
        kh, kw, _, cout = f.shape
        pads = padding if isinstance(padding, str) else None
        oh, pt = _geometry(h, kh, strides[0], dilations[0], pads or padding[0])
        ow, pl = _geometry(w, kw, strides[1], dilations[1], pads or padding[1])
        wide_x, wide_f = x.astype(np.float64), f.astype(np.float64)
        out = np.zeros((n, oh, ow, cout))
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        r = i * strides[0] - pt + a * dilations[0]
                        c = j * strides[1] - pl + b * dilations[1]
                        if 0 <= r < h and 0 <= c < w:
                            out[:, i, j, :] += wide_x[:, r, c, :] @ wide_f[a, b]
                        else:
                            # A padded zero times the filter: 0 * inf is NaN, as TF.
                            out[:, i, j, :] += np.zeros(x.shape[3]) @ wide_f[a, b]
        return out.astype(x.dtype)

    return ref


_CONVS = [
    # (input shape, filter shape, strides arg, padding, dilations arg)
    ((2, 5, 5, 3), (3, 3, 3, 4), 1, "SAME", 1),
    ((2, 5, 5, 3), (3, 3, 3, 4), [1, 1, 1, 1], "VALID", [1, 1, 1, 1]),
    ((1, 7, 6, 2), (3, 2, 2, 3), [2, 3], "SAME", 1),
    ((1, 7, 6, 2), (2, 3, 2, 1), [1, 2, 2, 1], "VALID", 1),
    ((1, 8, 8, 2), (3, 3, 2, 2), 1, "SAME", 2),
    ((1, 8, 7, 1), (2, 2, 1, 2), 1, "VALID", [1, 3, 2, 1]),
    ((2, 4, 4, 2), (1, 1, 2, 3), 1, "VALID", 1),
    ((0, 4, 4, 2), (3, 3, 2, 2), 1, "SAME", 1),
    ((1, 1, 1, 1), (1, 1, 1, 1), 1, "SAME", 1),
    ((1, 2, 2, 1), (3, 3, 1, 1), 2, "SAME", 1),
    ((1, 5, 5, 2), (3, 3, 2, 2), 1, [[0, 0], [1, 0], [2, 1], [0, 0]], 1),
]

for _dt in ("float32", "float64"):
    for _xs, _fs, _st, _pad, _dil in _CONVS:
        _s2 = (_st, _st) if isinstance(_st, int) else tuple(_st[-3:-1] if len(_st) == 4 else _st)
        _d2 = (_dil, _dil) if isinstance(_dil, int) else tuple(_dil[1:3])
        _p = _pad if isinstance(_pad, str) else (tuple(_pad[1]), tuple(_pad[2]))
        CASES.append(
            Case(
                f"conv2d/{_dt}/{_xs}*{_fs}/s={_st}/{_pad}/d={_dil}",
                lambda x, f, _st=_st, _pad=_pad, _dil=_dil: gf.nn.conv2d(
                    x, f, strides=_st, padding=_pad, dilations=_dil
                ),
                _conv_ref(_s2, _p, _d2),
                [_xs, _fs],
                [_dt, _dt],
                **_tol(_dt),
            )
        )
CASES.append(
    Case(
        "conv2d/filters-keyword",
        lambda x, f: gf.nn.conv2d(x, filters=f, strides=1, padding="SAME"),
        _conv_ref((1, 1), "SAME"),
        [(1, 3, 3, 2), (2, 2, 2, 1)],
        ["float64", "float64"],
    )
)


def _pool_ref(kind, ksize, strides, padding):
    """Loops over output pixels; a window holds only the cells inside the input."""

    def ref(x):
        n, h, w, c = x.shape
        oh, pt = _geometry(h, ksize[0], strides[0], 1, padding)
        ow, pl = _geometry(w, ksize[1], strides[1], 1, padding)
        out = np.empty((n, oh, ow, c))
        wide = x.astype(np.float64)
        for i in range(oh):
            for j in range(ow):
                r0, c0 = i * strides[0] - pt, j * strides[1] - pl
                window = wide[:, max(r0, 0) : r0 + ksize[0], max(c0, 0) : c0 + ksize[1], :]
                out[:, i, j, :] = (
                    window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
                )
        return out.astype(x.dtype)

    return ref


_POOLS = [
    # (input shape, ksize arg, strides arg, padding)
    ((2, 6, 6, 3), 2, 2, "VALID"),
    ((2, 5, 5, 3), [1, 2, 2, 1], [1, 2, 2, 1], "SAME"),
    ((1, 5, 7, 2), [3, 2], [1, 2], "SAME"),
    ((1, 7, 5, 1), 3, [2, 1], "VALID"),
    ((1, 4, 4, 2), 3, 1, "SAME"),
    ((0, 4, 4, 2), 2, 2, "SAME"),
    ((1, 1, 1, 1), 1, 1, "VALID"),
    ((1, 2, 3, 1), 4, 3, "SAME"),
]


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    return tuple(v[1:3]) if len(v) == 4 else tuple(v)


for _kind, _fns in (
    ("max", (gf.nn.max_pool, gf.nn.max_pool2d)),
    ("avg", (gf.nn.avg_pool, gf.nn.avg_pool2d)),
):
    for _dt in ("float32", "float64"):
        for _k, (_xs, _ks, _st, _pad) in enumerate(_POOLS):
            _fn = _fns[_k % 2]
            CASES.append(
                Case(
                    f"{_fn.__name__}/{_dt}/{_xs}/k={_ks}/s={_st}/{_pad}",
                    lambda x, _f=_fn, _ks=_ks, _st=_st, _pad=_pad: _f(x, _ks, _st, _pad),
                    _pool_ref(_kind, _pair(_ks), _pair(_st), _pad),
                    [_xs],
                    [_dt],
                    **({"rtol": 1e-6} if _dt == "float32" else {}),
                )
            )
CASES.append(
    Case(
        "max_pool/input-keyword",
        lambda x: gf.nn.max_pool(input=x, ksize=2, strides=1, padding="VALID"),
        _pool_ref("max", (2, 2), (1, 1), "VALID"),
        [(1, 3, 3, 1)],
        ["float32"],
    )
)
