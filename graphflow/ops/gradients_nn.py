"""Gradient rules of the nn ops, and the backprop ops of convolution and pooling.

Activations, softmax, the cross-entropies and bias_add differentiate into
compiled elementwise ops and reductions. Conv2D and the pools get the
backprop ops TF has (Conv2DBackpropInput, Conv2DBackpropFilter, MaxPoolGrad,
AvgPoolGrad, and MaxPoolGradGrad for second derivatives), declared here with
NumPy references; each is differentiable in turn, so second derivatives
work. The max pool's gradient goes to the first maximal cell of each window,
as TF's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType
from graphflow.graph import Operation, Tensor
from graphflow.ops import array_ops, math_ops, nn_ops
from graphflow.ops.gradients_math import Grads, op_output, scalar, sum_to_shape_of, zeros_like
from graphflow.ops.nn_ops import SELU_ALPHA, SELU_SCALE, _windows, window_output
from graphflow.ops.registry import STRUCTURED, defop, fail, set_gradient


def _g(grads: list[Tensor | None]) -> Tensor:
    g = grads[0]
    assert g is not None
    return g


def _masked(cond: Tensor, a: Tensor, b: Tensor | None = None) -> Tensor:
    return math_ops.where(cond, a, zeros_like(a) if b is None else b)


# -- activations -------------------------------------------------------------------------------
def _gelu_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g, x = _g(grads), op.inputs[0]
    if op.attrs["approximate"]:
        c, k = math.sqrt(2 / math.pi), 0.044715
        t = math_ops.tanh(c * (x + k * x * x * x))
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * (c * (1.0 + 3 * k * x * x))
    else:
        cdf = 0.5 * (1.0 + math_ops.erf(x * scalar(1 / math.sqrt(2), x.dtype)))
        pdf = math_ops.exp(-0.5 * x * x) * scalar(1 / math.sqrt(2 * math.pi), x.dtype)
        d = cdf + x * pdf
    return [g * d]


def _silu_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g, x = _g(grads), op.inputs[0]
    beta = op.attrs["beta"]
    s = math_ops.sigmoid(x * beta)
    return [g * (s + (x * beta) * s * (1.0 - s))]


set_gradient("Relu", lambda op, grads: [_masked(op.inputs[0] > 0, _g(grads))])
set_gradient(
    "Relu6",
    lambda op, grads: [
        _masked(math_ops.logical_and(op.inputs[0] > 0, op.inputs[0] < 6), _g(grads))
    ],
)
set_gradient(
    "LeakyRelu",
    lambda op, grads: [
        _masked(op.inputs[0] > 0, _g(grads), _g(grads) * op.attrs["alpha"]),
    ],
)
set_gradient(
    "Elu",
    lambda op, grads: [
        _masked(op.inputs[0] > 0, _g(grads), _g(grads) * (op.outputs[0] + 1.0)),
    ],
)
set_gradient(
    "Selu",
    lambda op, grads: [
        _masked(
            op.inputs[0] > 0,
            _g(grads) * SELU_SCALE,
            _g(grads) * (op.outputs[0] + SELU_SCALE * SELU_ALPHA),
        )
    ],
)
set_gradient("Softplus", lambda op, grads: [_g(grads) * math_ops.sigmoid(op.inputs[0])])
set_gradient("Gelu", _gelu_grad)
set_gradient("Silu", _silu_grad)


# -- softmax and cross-entropies -----------------------------------------------------------------
def _sum_keep(t: Tensor, axis: int) -> Tensor:
    return op_output("Sum", [t], {"axis": (axis,), "keepdims": True})


def _softmax_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g, y = _g(grads), op.outputs[0]
    return [(g - _sum_keep(g * y, op.attrs["axis"])) * y]


def _log_softmax_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g, y = _g(grads), op.outputs[0]
    return [g - math_ops.exp(y) * _sum_keep(g, op.attrs["axis"])]


def _xent_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # loss = sum(labels * (logsumexp(x) - x)): d/dx = softmax(x) * sum(labels) - labels
    # (softmax - labels when the labels sum to 1), d/dlabels = -log_softmax(x).
    g = _g(grads)
    logits, labels = op.inputs
    axis = op.attrs["axis"]
    g = array_ops.expand_dims(g, axis)
    softmax = nn_ops.softmax(logits, axis=axis)
    glogits = g * (softmax * _sum_keep(labels, axis) - labels)
    glabels = -g * nn_ops.log_softmax(logits, axis=axis)
    return [glogits, glabels]


def _sparse_xent_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = _g(grads)
    logits, labels = op.inputs
    classes = logits.shape[-1] if logits.shape.rank is not None else None
    if classes is None:
        raise op.error(
            errors.UnimplementedError,
            "the gradient of a sparse cross-entropy whose number of classes is unknown",
            expected="logits whose last dim is known when the graph is built",
        )
    hot = array_ops.one_hot(labels, classes, dtype=logits.dtype)
    return [array_ops.expand_dims(g, -1) * (nn_ops.softmax(logits) - hot), None]


def _bias_add_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = _g(grads)
    rank = g.shape.rank
    if rank is None:
        return [g, sum_to_shape_of(g, op.inputs[1])]
    return [g, op_output("Sum", [g], {"axis": tuple(range(rank - 1)), "keepdims": False})]


set_gradient("Softmax", _softmax_grad)
set_gradient("LogSoftmax", _log_softmax_grad)
set_gradient("SoftmaxCrossEntropyWithLogits", _xent_grad)
set_gradient("SparseSoftmaxCrossEntropyWithLogits", _sparse_xent_grad)
set_gradient("BiasAdd", _bias_add_grad)


# -- convolution ----------------------------------------------------------------------------------
def _conv_geometry(
    in_shape: tuple[int, ...], kernel: tuple[int, int], attrs: Mapping[str, Any]
) -> list[tuple[int, int, int]]:
    """(output size, pad before, pad after) of height and width."""
    pads = attrs.get("explicit_paddings") or ((0, 0), (0, 0))
    dilations = attrs.get("dilations", (1, 1))
    return [
        window_output(  # type: ignore[misc]
            in_shape[1 + i], kernel[i], attrs["strides"][i], dilations[i], attrs["padding"], pads[i]
        )
        for i in range(2)
    ]


def _scatter_windows(
    cells: np.ndarray,
    in_shape: tuple[int, ...],
    kernel: tuple[int, int],
    attrs: Mapping[str, Any],
) -> np.ndarray:
    """Adds cells (N, OH, OW, KH, KW, C) back onto the input cells they were read from."""
    (oh, pt, pb), (ow, pl, pr) = _conv_geometry(in_shape, kernel, attrs)
    n, h, w, c = in_shape
    sh, sw = attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    padded = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=cells.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
            padded[:, rows, cols, :] += cells[:, :, :, i, j, :]
    return np.ascontiguousarray(padded[:, pt : pt + h, pl : pl + w, :])


def _conv_backprop_input(
    input_like: np.ndarray,
    filter: np.ndarray,
    grad: np.ndarray,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    padding: str,
    explicit_paddings: Any,
) -> np.ndarray:
    attrs = {
        "strides": strides,
        "dilations": dilations,
        "padding": padding,
        "explicit_paddings": explicit_paddings,
    }
    # cells[n, oh, ow, kh, kw, c] = sum_o grad[n, oh, ow, o] * filter[kh, kw, c, o]
    cells = np.einsum("nhwo,ijco->nhwijc", grad, filter)
    out = _scatter_windows(cells, input_like.shape, filter.shape[:2], attrs)
    return out.astype(grad.dtype)


def _conv_backprop_filter(
    input: np.ndarray,
    filter_like: np.ndarray,
    grad: np.ndarray,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    padding: str,
    explicit_paddings: Any,
) -> np.ndarray:
    kh, kw = filter_like.shape[:2]
    view, _ = _windows(input, (kh, kw), strides, dilations, padding, explicit_paddings, 0)
    out = np.tensordot(view, grad, axes=([0, 1, 2], [0, 1, 2]))  # (KH, KW, C, O)
    return np.ascontiguousarray(out, dtype=grad.dtype)


def _same_float(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    if len(set(in_dtypes)) != 1 or not in_dtypes[0].is_floating:
        raise fail(
            "operands must be floats of one dtype",
            got=", ".join(d.name for d in in_dtypes),
            expected="float32 or float64 for all",
        )
    return [in_dtypes[0]]


defop(
    "Conv2DBackpropInput",
    STRUCTURED,
    lambda shapes, attrs: [shapes[0]],
    dtype=_same_float,
    reference=_conv_backprop_input,
    doc="the gradient of conv2d with respect to its input (shaped like `input_like`)",
)
defop(
    "Conv2DBackpropFilter",
    STRUCTURED,
    lambda shapes, attrs: [shapes[1]],
    dtype=_same_float,
    reference=_conv_backprop_filter,
    doc="the gradient of conv2d with respect to its filter (shaped like `filter_like`)",
)


def _conv_attrs(op: Operation) -> dict[str, Any]:
    return {k: op.attrs[k] for k in ("strides", "dilations", "padding", "explicit_paddings")}


def _conv2d_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = _g(grads)
    x, f = op.inputs
    attrs = _conv_attrs(op)
    return [
        op_output("Conv2DBackpropInput", [x, f, g], attrs),
        op_output("Conv2DBackpropFilter", [x, f, g], attrs),
    ]


def _backprop_input_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    # out = dx(f, g) is linear in f and in g: d/dg is the convolution itself,
    # d/df is the filter gradient of a convolution of gg with output gradient g.
    gg = _g(grads)
    _, f, g = op.inputs
    attrs = _conv_attrs(op)
    return [
        None,
        op_output("Conv2DBackpropFilter", [gg, f, g], attrs),
        op_output("Conv2D", [gg, f], attrs),
    ]


def _backprop_filter_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    gg = _g(grads)
    x, _, g = op.inputs
    attrs = _conv_attrs(op)
    return [
        op_output("Conv2DBackpropInput", [x, gg, g], attrs),
        None,
        op_output("Conv2D", [x, gg], attrs),
    ]


set_gradient("Conv2D", _conv2d_grad)
set_gradient("Conv2DBackpropInput", _backprop_input_grad)
set_gradient("Conv2DBackpropFilter", _backprop_filter_grad)


# -- pooling ---------------------------------------------------------------------------------------
def _pool_attrs(op: Operation) -> dict[str, Any]:
    return {k: op.attrs[k] for k in ("ksize", "strides", "padding")}


def _window_attrs(strides: tuple[int, int], padding: str) -> dict[str, Any]:
    return {"strides": strides, "padding": padding}


def _argmax_cells(x: np.ndarray, ksize: tuple[int, int], strides: tuple[int, int], padding: str):
    """(windows view (N, OH, OW, KH, KW, C), one-hot of each window's first max)."""
    view, _ = _windows(x, ksize, strides, (1, 1), padding, None, -np.inf)
    n, oh, ow, kh, kw, c = view.shape
    flat = view.reshape(n, oh, ow, kh * kw, c)
    first = np.argmax(flat, axis=3)  # the first max (or NaN) of each window
    hot = np.arange(kh * kw)[None, None, None, :, None] == first[:, :, :, None, :]
    return view, hot.reshape(n, oh, ow, kh, kw, c)


def _max_pool_grad(
    x: np.ndarray,
    y: np.ndarray,
    grad: np.ndarray,
    ksize: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> np.ndarray:
    _, hot = _argmax_cells(x, ksize, strides, padding)
    cells = np.where(hot, grad[:, :, :, None, None, :], 0).astype(grad.dtype)
    return _scatter_windows(cells, x.shape, ksize, _window_attrs(strides, padding))


def _max_pool_grad_grad(
    x: np.ndarray,
    y: np.ndarray,
    gg: np.ndarray,
    ksize: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> np.ndarray:
    _, hot = _argmax_cells(x, ksize, strides, padding)
    cells, _ = _windows(gg, ksize, strides, (1, 1), padding, None, 0)
    return np.sum(np.where(hot, cells, 0), axis=(3, 4)).astype(gg.dtype)


def _avg_pool_grad(
    x_like: np.ndarray,
    grad: np.ndarray,
    ksize: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
) -> np.ndarray:
    # Each output's gradient is shared by the cells of its window inside the input.
    ones = np.ones((1, *x_like.shape[1:3], 1), dtype=np.float64)
    view, _ = _windows(ones, ksize, strides, (1, 1), padding, None, 0)
    counts = view.sum(axis=(3, 4))  # (1, OH, OW, 1)
    share = (grad / counts.astype(grad.dtype))[:, :, :, None, None, :]
    cells = np.broadcast_to(share, (*grad.shape[:3], *ksize, grad.shape[3]))
    return _scatter_windows(cells, x_like.shape, ksize, _window_attrs(strides, padding)).astype(
        grad.dtype
    )


defop(
    "MaxPoolGrad",
    STRUCTURED,
    lambda shapes, attrs: [shapes[0]],
    dtype=_same_float,
    reference=_max_pool_grad,
    doc="the gradient of max_pool: each window's gradient to its first maximal cell",
)
defop(
    "MaxPoolGradGrad",
    STRUCTURED,
    lambda shapes, attrs: [shapes[1]],
    dtype=_same_float,
    reference=_max_pool_grad_grad,
    doc="the gradient of MaxPoolGrad: each window's first maximal cell of gg",
)
defop(
    "AvgPoolGrad",
    STRUCTURED,
    lambda shapes, attrs: [shapes[0]],
    dtype=_same_float,
    reference=_avg_pool_grad,
    doc="the gradient of avg_pool: each window's gradient shared by its cells in the input",
)


def _max_pool_grad_rule(op: Operation, grads: list[Tensor | None]) -> Grads:
    x, y = op.inputs[0], op.outputs[0]
    return [op_output("MaxPoolGrad", [x, y, _g(grads)], _pool_attrs(op))]


def _max_pool_grad_grad_rule(op: Operation, grads: list[Tensor | None]) -> Grads:
    # MaxPoolGrad(x, y, g) is linear in g; x and y only choose the cells.
    x, y, _ = op.inputs
    attrs = _pool_attrs(op)
    return [None, None, op_output("MaxPoolGradGrad", [x, y, _g(grads)], attrs)]


def _max_pool_grad_grad_grad_rule(op: Operation, grads: list[Tensor | None]) -> Grads:
    x, y, _ = op.inputs
    return [None, None, op_output("MaxPoolGrad", [x, y, _g(grads)], _pool_attrs(op))]


def _avg_pool_grad_rule(op: Operation, grads: list[Tensor | None]) -> Grads:
    return [op_output("AvgPoolGrad", [op.inputs[0], _g(grads)], _pool_attrs(op))]


set_gradient("MaxPool", _max_pool_grad_rule)
set_gradient("MaxPoolGrad", _max_pool_grad_grad_rule)
set_gradient("MaxPoolGradGrad", _max_pool_grad_grad_grad_rule)
set_gradient("AvgPool", _avg_pool_grad_rule)
set_gradient(
    "AvgPoolGrad",
    lambda op, grads: [None, op_output("AvgPool", [_g(grads)], _pool_attrs(op))],
)
