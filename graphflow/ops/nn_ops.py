"""Neural-network ops: activations, softmax and losses, bias_add, moments, conv2d, pooling.

Activations are ELEMENTWISE and take floats only (relu and relu6 also take
ints, as TF does). Softmax, log-softmax and the cross-entropy losses are
STRUCTURED, computed max-shifted so that large logits do not overflow; their
`axis` attribute is normalized when the op is built (it stays as given only
for an input of unknown rank).

Images are NHWC: batch, height, width, channels; filters are
[height, width, in_channels, out_channels]. Conv2D and the pools carry
`strides` (and `dilations`, `ksize`) as (height, width) pairs and `padding`
as "SAME", "VALID" or, for Conv2D, "EXPLICIT" with `explicit_paddings`
((top, bottom), (left, right)). SAME pads as TF does: the total padding of a
dim is max((out - 1) * stride + dilated_kernel - in, 0) with out = ceil(in /
stride), and the smaller half goes before. Padded cells count as 0 in a
convolution, never win a max pool, and are left out of an average pool's
mean. A NaN in a pooling window makes the result NaN (NumPy's max).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from graphflow import dtypes, errors
from graphflow.dtypes import DType
from graphflow.graph import Tensor
from graphflow.ops.convert import convert_to_tensor, promote, static_ints, static_value
from graphflow.ops.math_ops import _erf, _sigmoid, squared_difference
from graphflow.ops.reduction_ops import (
    normalize_axes,
    normalize_axis,
    reduce_mean,
    reduced_shape,
    runtime_axes,
)
from graphflow.ops.registry import (
    CONTRACTION,
    ELEMENTWISE,
    REDUCTION,
    STRUCTURED,
    apply_op,
    defop,
    fail,
)
from graphflow.shapes import Shape
from graphflow.source import user_location

FLOATS = dtypes.FLOAT_DTYPES
NUMERIC = dtypes.NUMERIC_DTYPES

# TF's SELU constants (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _user_error(
    cls: type[errors.GraphflowError],
    op_type: str,
    name: str | None,
    what: str,
    got: str | None = None,
    expected: str | None = None,
) -> errors.GraphflowError:
    """An error about an op a public function is building, located at the user's line."""
    return cls(errors.op_message(op_type, name or op_type, user_location(), what, got, expected))


def _dtype_rule(allowed: tuple[DType, ...], count: int = 1) -> Callable:
    """The first `count` inputs must share one dtype from `allowed`; the output has it."""

    def rule(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
        first = in_dtypes[0]
        for d in in_dtypes[:count]:
            if d != first:
                raise fail(
                    "operands must have one dtype",
                    got=", ".join(x.name for x in in_dtypes[:count]),
                    expected="equal dtypes",
                )
        if first not in allowed:
            raise fail(
                "unsupported dtype",
                got=first.name,
                expected="one of " + ", ".join(a.name for a in allowed),
            )
        return [first]

    return rule


def _same_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [shapes[0]]


# -- activations ---------------------------------------------------------------------------
def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0), 6).astype(x.dtype, copy=False)


def _leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, x * x.dtype.type(alpha))


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(x))


def _selu(x: np.ndarray) -> np.ndarray:
    scale, alpha = x.dtype.type(SELU_SCALE), x.dtype.type(SELU_ALPHA)
    return scale * np.where(x > 0, x, alpha * np.expm1(x))


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exp never overflows.
    return np.logaddexp(x.dtype.type(0), x)


def _gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    if approximate:
        c = x.dtype.type(math.sqrt(2 / math.pi))
        half, k = x.dtype.type(0.5), x.dtype.type(0.044715)
        return half * x * (1 + np.tanh(c * (x + k * x * x * x)))
    wide = x.astype(np.float64)
    return (0.5 * wide * (1 + _erf(wide / math.sqrt(2)))).astype(x.dtype)


def _silu(x: np.ndarray, beta: float) -> np.ndarray:
    return x * _sigmoid(x * x.dtype.type(beta))


def _activation(name: str, reference: Callable, allowed: tuple[DType, ...], doc: str) -> None:
    defop(name, ELEMENTWISE, _same_shape, dtype=_dtype_rule(allowed), reference=reference, doc=doc)


_activation("Relu", _relu, NUMERIC, "max(x, 0); NaN stays NaN")
_activation("Relu6", _relu6, NUMERIC, "min(max(x, 0), 6); NaN stays NaN")
_activation("LeakyRelu", _leaky_relu, FLOATS, "x if x > 0 else alpha * x")
_activation("Elu", _elu, FLOATS, "x if x > 0 else exp(x) - 1")
_activation("Selu", _selu, FLOATS, "scale * (x if x > 0 else alpha * (exp(x) - 1)), TF's constants")
_activation("Softplus", _softplus, FLOATS, "log(1 + exp(x)), computed without overflow")
_activation(
    "Gelu", _gelu, FLOATS, "x * Phi(x) with erf, or its tanh approximation if `approximate`"
)
_activation("Silu", _silu, FLOATS, "x * sigmoid(beta * x) (swish)")


def _apply_activation(
    op_type: str, features: Any, name: str | None, attrs: Mapping[str, Any] | None = None
) -> Tensor:
    t = convert_to_tensor(features)
    return apply_op(op_type, [t], attrs or {}, name=name or op_type).outputs[0]


def relu(features: Any, name: str | None = None) -> Tensor:
    """max(features, 0) elementwise (Relu op); floats or ints."""
    return _apply_activation("Relu", features, name)


def relu6(features: Any, name: str | None = None) -> Tensor:
    """min(max(features, 0), 6) elementwise (Relu6 op); floats or ints."""
    return _apply_activation("Relu6", features, name)


def leaky_relu(features: Any, alpha: float = 0.2, name: str | None = None) -> Tensor:
    """features if features > 0 else alpha * features (LeakyRelu op); floats only."""
    a = float(static_value(alpha, "alpha", "LeakyRelu"))
    return _apply_activation("LeakyRelu", features, name, {"alpha": a})


def elu(features: Any, name: str | None = None) -> Tensor:
    """features if features > 0 else exp(features) - 1 (Elu op); floats only."""
    return _apply_activation("Elu", features, name)


def selu(features: Any, name: str | None = None) -> Tensor:
    """The scaled ELU with TF's alpha and scale (Selu op); floats only."""
    return _apply_activation("Selu", features, name)


def softplus(features: Any, name: str | None = None) -> Tensor:
    """log(exp(features) + 1), stable for large |features| (Softplus op); floats only."""
    return _apply_activation("Softplus", features, name)


def gelu(features: Any, approximate: bool = False, name: str | None = None) -> Tensor:
    """The Gaussian error linear unit (Gelu op); floats only.

    Args:
      features: a float tensor.
      approximate: use 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) instead
        of the exact 0.5x(1 + erf(x / sqrt(2))).
      name: name of the op.
    """
    return _apply_activation("Gelu", features, name, {"approximate": bool(approximate)})


def silu(features: Any, beta: float = 1.0, name: str | None = None) -> Tensor:
    """features * sigmoid(beta * features), also called swish (Silu op); floats only."""
    b = float(static_value(beta, "beta", "Silu"))
    return _apply_activation("Silu", features, name, {"beta": b})


swish = silu


# -- softmax -------------------------------------------------------------------------------
def _softmax_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    shape = shapes[0]
    if not 0 <= attrs["axis"] < shape.rank:
        raise fail(
            "axis out of range",
            got=f"axis {attrs['axis']} for shape {shape}",
            expected="an input of rank >= 1 and an axis inside it",
        )
    return [shape]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    e = np.exp(x - m)
    return (e / np.sum(e, axis=axis, keepdims=True, dtype=x.dtype)).astype(x.dtype)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True, dtype=x.dtype))
    return (shifted - lse).astype(x.dtype)


defop(
    "Softmax",
    STRUCTURED,
    _softmax_shape,
    dtype=_dtype_rule(FLOATS),
    reference=_softmax,
    doc="exp(x) / sum(exp(x)) along axis, max-shifted",
)
defop(
    "LogSoftmax",
    STRUCTURED,
    _softmax_shape,
    dtype=_dtype_rule(FLOATS),
    reference=_log_softmax,
    doc="x - log(sum(exp(x))) along axis, max-shifted",
)


def _softmax_axis(axis: Any, dim: Any, op_type: str, name: str | None) -> Any:
    if dim is not None:
        if axis is not None:
            raise _user_error(
                errors.InvalidArgumentError,
                op_type,
                name,
                "both axis and its deprecated alias dim are given",
                expected="only one of them",
            )
        axis = dim
    return -1 if axis is None else axis


def _softmax_op(op_type: str, logits: Any, axis: Any, name: str | None, dim: Any) -> Tensor:
    t = convert_to_tensor(logits)
    axis = _softmax_axis(axis, dim, op_type, name)
    a = normalize_axis(axis, t.shape.rank, op_type, name)
    return apply_op(op_type, [t], {"axis": a}, name=name or op_type).outputs[0]


def softmax(logits: Any, axis: Any = None, name: str | None = None, dim: Any = None) -> Tensor:
    """exp(logits) / reduce_sum(exp(logits), axis) (Softmax op), computed max-shifted.

    Args:
      logits: a float tensor of rank >= 1.
      axis: the axis to normalize over; default -1 (the last).
      name: name of the op.
      dim: the deprecated name of `axis`.

    Raises:
      InvalidArgumentError: an axis out of range, or a non-float dtype.
    """
    return _softmax_op("Softmax", logits, axis, name, dim)


def log_softmax(logits: Any, axis: Any = None, name: str | None = None, dim: Any = None) -> Tensor:
    """logits - log(reduce_sum(exp(logits), axis)) (LogSoftmax op), computed max-shifted.

    Args:
      logits: a float tensor of rank >= 1.
      axis: the axis to normalize over; default -1 (the last).
      name: name of the op.
      dim: the deprecated name of `axis`.

    Raises:
      InvalidArgumentError: an axis out of range, or a non-float dtype.
    """
    return _softmax_op("LogSoftmax", logits, axis, name, dim)


# -- cross-entropy -------------------------------------------------------------------------
def _sparse_xent_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    logits, labels = shapes
    if logits.rank < 1 or labels.rank != logits.rank - 1:
        raise fail(
            "labels must have the shape of logits without its last dim",
            got=f"logits of shape {logits} and labels of shape {labels}",
            expected=f"labels of shape {logits[:-1]}",
        )
    if not labels.is_compatible_with(logits[:-1]):
        raise fail(
            "labels must have the shape of logits without its last dim",
            got=f"logits of shape {logits} and labels of shape {labels}",
            expected=f"labels of shape {logits[:-1]}",
        )
    return [labels.merge_with(logits[:-1])]


def _sparse_xent_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    logits, labels = in_dtypes
    if logits not in FLOATS:
        raise fail("logits must be floats", got=logits.name, expected="float32 or float64")
    if labels not in dtypes.INT_DTYPES:
        raise fail("labels must be class indices", got=labels.name, expected="int32 or int64")
    return [logits]


def _sparse_xent(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    num_classes = logits.shape[-1]
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        # As TF's CPU kernel: out-of-range labels are an error, not NaN.
        raise errors.InvalidArgumentError(
            f"received a label value of {labels[bad].flat[0]} which is outside the valid "
            f"range of [0, {num_classes}); expected labels in [0, {num_classes})"
        )
    shifted = logits - np.max(logits, axis=-1, keepdims=True, initial=-np.inf)
    lse = np.log(np.sum(np.exp(shifted), axis=-1, dtype=logits.dtype))
    picked = np.take_along_axis(shifted, labels[..., None].astype(np.intp), axis=-1)[..., 0]
    return np.asarray(lse - picked, dtype=logits.dtype)


defop(
    "SparseSoftmaxCrossEntropyWithLogits",
    STRUCTURED,
    _sparse_xent_shape,
    dtype=_sparse_xent_dtype,
    reference=_sparse_xent,
    doc="-log(softmax(logits)[label]) per row; labels outside [0, classes) are an error",
)


def _xent_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    logits, labels = shapes
    if not logits.is_compatible_with(labels):
        raise fail(
            "labels and logits must have one shape",
            got=f"logits of shape {logits} and labels of shape {labels}",
            expected="equal shapes",
        )
    shape = logits.merge_with(labels)
    axis = attrs["axis"]
    if not 0 <= axis < shape.rank:
        raise fail(
            "axis out of range",
            got=f"axis {axis} for shape {shape}",
            expected="an input of rank >= 1 and an axis inside it",
        )
    return [reduced_shape(shape, (axis,), False)]


def _xent(logits: np.ndarray, labels: np.ndarray, axis: int) -> np.ndarray:
    if logits.shape != labels.shape:
        raise errors.InvalidArgumentError(
            f"labels and logits must have one shape; got logits of shape {logits.shape} and "
            f"labels of shape {labels.shape}"
        )
    shifted = logits - np.max(logits, axis=axis, keepdims=True, initial=-np.inf)
    lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True, dtype=logits.dtype))
    return np.asarray(
        np.sum(labels * (lse - shifted), axis=axis, dtype=logits.dtype), dtype=logits.dtype
    )


defop(
    "SoftmaxCrossEntropyWithLogits",
    STRUCTURED,
    _xent_shape,
    dtype=_dtype_rule(FLOATS, count=2),
    reference=_xent,
    doc="-sum(labels * log_softmax(logits)) along axis; labels and logits of one shape",
)


def _check_xent_args(
    api: str, op_type: str, sentinel: Any, labels: Any, logits: Any, name: str | None
) -> None:
    if sentinel is not None:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            f"{api} takes named arguments only",
            got="a positional argument",
            expected=f"{api}(labels=..., logits=..., ...)",
        )
    if labels is None or logits is None:
        missing = " and ".join(n for n, v in (("labels", labels), ("logits", logits)) if v is None)
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "both labels and logits must be given",
            got=f"no {missing}",
            expected=f"{api}(labels=..., logits=...)",
        )


def sparse_softmax_cross_entropy_with_logits(
    _sentinel: Any = None, labels: Any = None, logits: Any = None, name: str | None = None
) -> Tensor:
    """Cross-entropy between class indices and unnormalized log-probabilities.

    loss[i] = logsumexp(logits[i, :]) - logits[i, labels[i]], computed
    max-shifted (SparseSoftmaxCrossEntropyWithLogits op).

    Args:
      _sentinel: do not use; arguments must be named.
      labels: int32 or int64 class indices in [0, num_classes), of shape
        logits.shape[:-1].
      logits: float tensor of shape [..., num_classes].
      name: name of the op.

    Returns:
      The loss, of the shape of `labels` and the dtype of `logits`.

    Raises:
      InvalidArgumentError: positional arguments, shapes that do not fit,
        wrong dtypes; when run, a label outside [0, num_classes).
    """
    op_type = "SparseSoftmaxCrossEntropyWithLogits"
    _check_xent_args(
        "sparse_softmax_cross_entropy_with_logits", op_type, _sentinel, labels, logits, name
    )
    x = convert_to_tensor(logits)
    y = convert_to_tensor(labels)
    return apply_op(op_type, [x, y], name=name or op_type).outputs[0]


def _softmax_cross_entropy(
    api: str,
    labels: Any,
    logits: Any,
    dim: Any,
    axis: Any,
    name: str | None,
    stop_labels_gradient: bool,
) -> Tensor:
    op_type = "SoftmaxCrossEntropyWithLogits"
    if axis is not None and dim not in (None, -1):
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "both axis and its deprecated alias dim are given",
            expected="only one of them",
        )
    axis = axis if axis is not None else (-1 if dim is None else dim)
    (x, y), _ = promote(logits, labels, op_name=api)
    if stop_labels_gradient:
        from graphflow.ops.array_ops import stop_gradient

        y = stop_gradient(y)
    rank = x.shape.rank if x.shape.rank is not None else y.shape.rank
    a = normalize_axis(axis, rank, op_type, name)
    return apply_op(op_type, [x, y], {"axis": a}, name=name or op_type).outputs[0]


def softmax_cross_entropy_with_logits(
    _sentinel: Any = None,
    labels: Any = None,
    logits: Any = None,
    dim: Any = -1,
    name: str | None = None,
    axis: Any = None,
) -> Tensor:
    """Cross-entropy between a distribution `labels` and softmax(logits), along `axis`.

    As in TF1, no gradient flows into `labels` (the v2 function lets it).

    Args:
      _sentinel: do not use; arguments must be named.
      labels: probabilities, of the shape of `logits`.
      logits: unnormalized log-probabilities (floats).
      dim: the deprecated name of `axis`.
      name: name of the op.
      axis: the class axis; default -1.

    Returns:
      The loss, of the shape of `logits` without `axis`.

    Raises:
      InvalidArgumentError: positional arguments, shapes that differ, an axis
        out of range, non-float dtypes.
    """
    api = "softmax_cross_entropy_with_logits"
    _check_xent_args(api, "SoftmaxCrossEntropyWithLogits", _sentinel, labels, logits, name)
    return _softmax_cross_entropy(api, labels, logits, dim, axis, name, True)


def softmax_cross_entropy_with_logits_v2(
    _sentinel: Any = None,
    labels: Any = None,
    logits: Any = None,
    dim: Any = -1,
    name: str | None = None,
    axis: Any = None,
) -> Tensor:
    """Cross-entropy between `labels` and softmax(logits); gradients flow into both.

    Arguments as in `softmax_cross_entropy_with_logits`.
    """
    api = "softmax_cross_entropy_with_logits_v2"
    _check_xent_args(api, "SoftmaxCrossEntropyWithLogits", _sentinel, labels, logits, name)
    return _softmax_cross_entropy(api, labels, logits, dim, axis, name, False)


# -- bias_add ------------------------------------------------------------------------------
def _bias_add_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    value, bias = shapes
    if value.rank < 2:
        raise fail(
            "value must have rank 2 or more",
            got=f"shape {value}",
            expected="[batch, ..., channels]",
        )
    if bias.rank != 1 or not Shape([value[-1]]).is_compatible_with(bias):
        raise fail(
            "bias must be 1-D with the size of the last dim of value",
            got=f"value of shape {value} and bias of shape {bias}",
            expected=f"bias of shape ({value[-1] if value[-1] is not None else '?'},)",
        )
    dims = value.as_list()
    if dims[-1] is None:
        dims[-1] = bias[0]
    return [Shape(dims)]


defop(
    "BiasAdd",
    ELEMENTWISE,
    _bias_add_shape,
    dtype=_dtype_rule(NUMERIC, count=2),
    reference=lambda value, bias: np.add(value, bias),
    doc="value + bias, with a 1-D bias along the last (channel) dim",
)


def bias_add(
    value: Any, bias: Any, data_format: str | None = None, name: str | None = None
) -> Tensor:
    """Adds a 1-D `bias` along the channel dim of `value` (BiasAdd op).

    Args:
      value: a tensor of rank >= 2.
      bias: a 1-D tensor with one entry per channel.
      data_format: None or "NHWC" (channels last, any rank >= 2), or
        "NCHW" (channels in dim 1, rank >= 3: built as Reshape + Add so that
        the bias broadcasts in NumPy's sense).
      name: name of the op.

    Raises:
      InvalidArgumentError: a bias that is not 1-D or does not match the
        channel dim, or an unknown data_format.
    """
    op_type = "BiasAdd"
    (v, b), dtype = promote(value, bias, op_name="bias_add")
    if dtype.is_bool:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "bias_add of bools",
            got="bool",
            expected="numbers",
        )
    if data_format in (None, "NHWC", "N...C", "NWC", "NDHWC"):
        return apply_op(op_type, [v, b], name=name or op_type).outputs[0]
    if data_format not in ("NCHW", "NC...", "NCW", "NCDHW"):
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "unknown data_format",
            got=repr(data_format),
            expected="'NHWC' or 'NCHW'",
        )
    rank = v.shape.rank
    channels = v.shape[1] if rank is not None and rank >= 2 else None
    if (
        (rank is not None and rank < 3)
        or b.shape.rank not in (1, None)
        or (channels is not None and b.shape[0] not in (None, channels))
    ):
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "with data_format NCHW, value must have rank 3 or more and bias be 1-D with the "
            "size of dim 1 of value",
            got=f"value of shape {v.shape} and bias of shape {b.shape}",
            expected=f"bias of shape ({'?' if channels is None else channels},)",
        )
    if rank is None:
        raise _user_error(
            errors.UnimplementedError,
            op_type,
            name,
            "bias_add with data_format NCHW on a value of unknown rank",
            expected="a value of known rank",
        )
    from graphflow.ops.array_ops import reshape

    column = reshape(b, [-1] + [1] * (rank - 2))
    return apply_op("Add", [v, column], name=name or op_type).outputs[0]


# -- moments and l2_loss -------------------------------------------------------------------
def moments(
    x: Any,
    axes: Any,
    shift: Any = None,
    name: str | None = None,
    keep_dims: bool | None = None,
    keepdims: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """The mean and variance of `x` over `axes`.

    Args:
      x: a tensor.
      axes: the axes to reduce (ints; negative counts from the end).
      shift: unused, as in TF1.
      name: name scope of the ops.
      keep_dims: the deprecated name of `keepdims`.
      keepdims: keep the reduced axes as dims of size 1 (default False).

    Returns:
      (mean, variance); the variance is mean((x - mean)**2).

    Raises:
      InvalidArgumentError: an axis out of range.
    """
    from graphflow.ops.array_ops import squeeze, stop_gradient

    keep = bool(keepdims) if keepdims is not None else bool(keep_dims)
    t = convert_to_tensor(x)
    if axes is None:
        raise _user_error(
            errors.InvalidArgumentError,
            "Mean",
            name,
            "moments needs axes",
            got="axes=None",
            expected="a list of axes to reduce",
        )
    with t.graph.name_scope(name or "moments"):
        mean = reduce_mean(t, axes, keepdims=True, name="mean")
        variance = reduce_mean(
            squared_difference(t, stop_gradient(mean)), axes, keepdims=True, name="variance"
        )
        # The normalized axes (as given if the rank is unknown). squeeze([])
        # would drop every dim of size 1, so reducing no axis squeezes nothing.
        reduced = list(mean.op.attrs["axis"])
        if not keep and reduced:
            mean = squeeze(mean, reduced)
            variance = squeeze(variance, reduced)
    return mean, variance


def _l2_loss(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    axes = runtime_axes(x, axis)
    return np.asarray(np.sum(x * x, axis=axes, keepdims=keepdims, dtype=x.dtype) / 2, dtype=x.dtype)


defop(
    "L2Loss",
    REDUCTION,
    lambda shapes, attrs: [reduced_shape(shapes[0], attrs["axis"], attrs["keepdims"])],
    dtype=_dtype_rule(FLOATS),
    reference=_l2_loss,
    unknown_rank_ok=True,
    doc="sum(x ** 2) / 2 over every axis (a scalar)",
)


def l2_loss(t: Any, name: str | None = None) -> Tensor:
    """sum(t ** 2) / 2, a scalar (L2Loss op); floats only.

    The op carries the attributes of the other reductions: `axis` (every
    axis) and `keepdims` (False).
    """
    x = convert_to_tensor(t)
    axes = normalize_axes(None, x.shape.rank, "L2Loss", name)
    return apply_op(
        "L2Loss", [x], {"axis": axes, "keepdims": False}, name=name or "L2Loss"
    ).outputs[0]


# -- windows: conv2d and pooling -----------------------------------------------------------
def window_output(
    size: int | None,
    kernel: int,
    stride: int,
    dilation: int,
    padding: str,
    pads: tuple[int, int] = (0, 0),
) -> tuple[int | None, int, int]:
    """(output size, pad before, pad after) of one spatial dim, as TF computes them.

    A VALID or EXPLICIT output size below 0 is returned as is (the caller
    reports it); like TF's C++ code, the division truncates toward zero.
    """
    if size is None:
        return None, 0, 0
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return out, total // 2, total - total // 2
    before, after = pads if padding == "EXPLICIT" else (0, 0)
    span = size + before + after - effective + stride
    out = span // stride if span >= 0 else -((-span) // stride)
    return out, before, after


def _window_dims(
    shape: Shape, attrs: Mapping[str, Any], kernel: tuple[int, int], dilations: tuple[int, int]
) -> list[int | None]:
    pads = attrs.get("explicit_paddings") or ((0, 0), (0, 0))
    out = []
    for i in range(2):
        size = shape[1 + i]
        o, _, _ = window_output(
            size, kernel[i], attrs["strides"][i], dilations[i], attrs["padding"], pads[i]
        )
        if o is not None and o < 0:
            raise fail(
                "the window is larger than the padded input",
                got=f"input of shape {shape}, window {kernel[0]}x{kernel[1]}, "
                f"dilations {dilations}, padding {attrs['padding']}",
                expected="a computed output size of 0 or more",
            )
        out.append(o)
    return out


def _windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
    padding: str,
    pads: Any,
    fill: float,
) -> tuple[np.ndarray, tuple[tuple[int, int], tuple[int, int]]]:
    """A read-only view of shape (N, OH, OW, KH, KW, C): every window of padded x.

    Returns the view and the (before, after) padding of height and width.
    """
    n, h, w, c = x.shape
    pads = pads or ((0, 0), (0, 0))
    geometry = []
    for i, size in enumerate((h, w)):
        o, before, after = window_output(
            size, kernel[i], strides[i], dilations[i], padding, pads[i]
        )
        if o < 0:
            raise errors.InvalidArgumentError(
                f"the computed output size would be negative: input of shape {x.shape}, "
                f"window {kernel}, dilations {dilations}, padding {padding}; expected an "
                "input at least as large as the (dilated) window"
            )
        geometry.append((o, before, after))
    (oh, pt, pb), (ow, pl, pr) = geometry
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    s0, s1, s2, s3 = x.strides
    view = as_strided(
        x,
        shape=(n, oh, ow, kernel[0], kernel[1], c),
        strides=(s0, s1 * strides[0], s2 * strides[1], s1 * dilations[0], s2 * dilations[1], s3),
        writeable=False,
    )
    return view, ((pt, pb), (pl, pr))


def _conv2d_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    x, f = shapes
    if x.rank != 4 or f.rank != 4:
        raise fail(
            "conv2d takes a 4-D input and a 4-D filter",
            got=f"input of shape {x} and filter of shape {f}",
            expected="input [batch, height, width, in_channels] and filter "
            "[height, width, in_channels, out_channels]",
        )
    if x[3] is not None and f[2] is not None and x[3] != f[2]:
        raise fail(
            "the input's channels differ from the filter's in_channels",
            got=f"input of shape {x} and filter of shape {f}",
            expected=f"filter[2] == input[3] ({x[3]})",
        )
    if f[0] == 0 or f[1] == 0:
        raise fail(
            "the filter has an empty spatial dim",
            got=f"filter of shape {f}",
            expected="a filter of height and width >= 1",
        )
    kernel = (f[0] if f[0] is not None else 1, f[1] if f[1] is not None else 1)
    oh, ow = _window_dims(x, attrs, kernel, attrs["dilations"])
    if f[0] is None:
        oh = None
    if f[1] is None:
        ow = None
    return [Shape([x[0], oh, ow, f[3]])]


def _conv2d(
    x: np.ndarray,
    filter: np.ndarray,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    padding: str,
    explicit_paddings: Any,
) -> np.ndarray:
    kh, kw, cin, _ = filter.shape
    if x.shape[3] != cin:
        raise errors.InvalidArgumentError(
            f"the input has {x.shape[3]} channels but the filter expects {cin}; got input of "
            f"shape {x.shape} and filter of shape {filter.shape}"
        )
    view, _ = _windows(x, (kh, kw), strides, dilations, padding, explicit_paddings, 0)
    # im2col: one copy of the windows, then one GEMM through BLAS.
    out = np.tensordot(view, filter, axes=([3, 4, 5], [0, 1, 2]))
    return np.ascontiguousarray(out, dtype=x.dtype)


defop(
    "Conv2D",
    CONTRACTION,
    _conv2d_shape,
    dtype=_dtype_rule(FLOATS, count=2),
    reference=_conv2d,
    doc="2-D convolution (cross-correlation), NHWC, with strides, dilations and padding",
)


def _spatial(
    value: Any, what: str, op_type: str, name: str | None, default: int | None = None
) -> tuple[int, int]:
    """TF's forms of strides, dilations and ksize: an int, or 1, 2 or 4 ints (NHWC)."""
    if value is None:
        if default is None:
            raise _user_error(
                errors.InvalidArgumentError,
                op_type,
                name,
                f"{what} is required",
                got="None",
                expected="an int or a list of 1, 2 or 4 ints",
            )
        return default, default
    given = static_ints(value, what, op_type)
    if len(given) == 1:
        pair = (given[0], given[0])
    elif len(given) == 2:
        pair = (given[0], given[1])
    elif len(given) == 4:
        if given[0] != 1 or given[3] != 1:
            raise _user_error(
                errors.InvalidArgumentError,
                op_type,
                name,
                f"{what} in the batch and channel dims must be 1",
                got=str(list(given)),
                expected=f"[1, {what}_h, {what}_w, 1]",
            )
        pair = (given[1], given[2])
    else:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            f"{what} must have 1, 2 or 4 entries",
            got=str(list(given)),
            expected="an int or a list of 1, 2 or 4 ints",
        )
    if min(pair) < 1:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            f"{what} must be >= 1",
            got=str(list(given)),
            expected="positive ints",
        )
    return pair


def _padding(
    padding: Any, op_type: str, name: str | None, explicit_ok: bool
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The padding attrs: "SAME", "VALID", or (conv2d) [[0, 0], [t, b], [l, r], [0, 0]]."""
    if isinstance(padding, str) and padding in ("SAME", "VALID"):
        return padding, ()
    expected = "'SAME' or 'VALID'" + (
        " or [[0, 0], [top, bottom], [left, right], [0, 0]]" if explicit_ok else ""
    )
    if explicit_ok and isinstance(padding, list | tuple | np.ndarray):
        pads = np.asarray(padding)
        if (
            pads.shape == (4, 2)
            and pads.dtype.kind in "iu"
            and (pads >= 0).all()
            and not pads[0].any()
            and not pads[3].any()
        ):
            return "EXPLICIT", (
                (int(pads[1, 0]), int(pads[1, 1])),
                (int(pads[2, 0]), int(pads[2, 1])),
            )
    raise _user_error(
        errors.InvalidArgumentError,
        op_type,
        name,
        "invalid padding",
        got=repr(padding),
        expected=expected,
    )


def _nhwc_only(data_format: Any, op_type: str, name: str | None) -> None:
    if data_format in ("NHWC", None):
        return
    if data_format == "NCHW":
        raise _user_error(
            errors.UnimplementedError,
            op_type,
            name,
            "data_format NCHW is not supported",
            got="'NCHW'",
            expected="'NHWC' (transpose the input first)",
        )
    raise _user_error(
        errors.InvalidArgumentError,
        op_type,
        name,
        "unknown data_format",
        got=repr(data_format),
        expected="'NHWC'",
    )


def _float_operands(dtype: DType, op_type: str, name: str | None) -> None:
    if not dtype.is_floating:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "unsupported dtype",
            got=dtype.name,
            expected="float32 or float64",
        )


def conv2d(
    input: Any,
    filter: Any = None,
    strides: Any = None,
    padding: Any = None,
    use_cudnn_on_gpu: bool = True,
    data_format: str = "NHWC",
    dilations: Any = (1, 1, 1, 1),
    name: str | None = None,
    filters: Any = None,
) -> Tensor:
    """2-D convolution (as in TF, a cross-correlation) of NHWC images (Conv2D op).

    Args:
      input: float tensor [batch, in_height, in_width, in_channels].
      filter: float tensor [filter_height, filter_width, in_channels, out_channels].
      strides: an int, or 1, 2 or 4 ints (with 4: [1, stride_h, stride_w, 1]).
      padding: "SAME", "VALID" or [[0, 0], [top, bottom], [left, right], [0, 0]].
      use_cudnn_on_gpu: ignored.
      data_format: "NHWC" (NCHW is not supported).
      dilations: an int, or 1, 2 or 4 ints, like strides.
      name: name of the op.
      filters: the TF2 name of `filter`.

    Returns:
      [batch, out_height, out_width, out_channels]; out = ceil(in / stride)
      for SAME and ceil((in - (k - 1) * dilation) / stride) for VALID.

    Raises:
      InvalidArgumentError: bad strides, dilations, padding or shapes.
      UnimplementedError: data_format "NCHW".
    """
    op_type = "Conv2D"
    if filter is not None and filters is not None:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "both filter and filters are given",
            expected="only one of them",
        )
    filter = filters if filter is None else filter
    if filter is None:
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "no filter given",
            expected="conv2d(input, filter, strides, padding)",
        )
    _nhwc_only(data_format, op_type, name)
    attrs = {
        "strides": _spatial(strides, "strides", op_type, name),
        "dilations": _spatial(dilations, "dilations", op_type, name, default=1),
    }
    attrs["padding"], attrs["explicit_paddings"] = _padding(padding, op_type, name, True)
    (x, f), dtype = promote(input, filter, op_name="conv2d")
    _float_operands(dtype, op_type, name)
    return apply_op(op_type, [x, f], attrs, name=name or op_type).outputs[0]


def _pool_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    x = shapes[0]
    if x.rank != 4:
        raise fail(
            "pooling takes a 4-D input",
            got=f"shape {x}",
            expected="[batch, height, width, channels]",
        )
    oh, ow = _window_dims(x, attrs, attrs["ksize"], (1, 1))
    return [Shape([x[0], oh, ow, x[3]])]


def _max_pool(
    x: np.ndarray, ksize: tuple[int, int], strides: tuple[int, int], padding: str
) -> np.ndarray:
    view, _ = _windows(x, ksize, strides, (1, 1), padding, None, -np.inf)
    return np.asarray(np.max(view, axis=(3, 4)), dtype=x.dtype)


def _valid_counts(size: int, out: int, kernel: int, stride: int, before: int) -> np.ndarray:
    starts = np.arange(out) * stride - before
    return np.minimum(starts + kernel, size) - np.maximum(starts, 0)


def _avg_pool(
    x: np.ndarray, ksize: tuple[int, int], strides: tuple[int, int], padding: str
) -> np.ndarray:
    view, ((pt, _), (pl, _)) = _windows(x, ksize, strides, (1, 1), padding, None, 0)
    total = np.sum(view, axis=(3, 4), dtype=x.dtype)
    rows = _valid_counts(x.shape[1], view.shape[1], ksize[0], strides[0], pt)
    cols = _valid_counts(x.shape[2], view.shape[2], ksize[1], strides[1], pl)
    counts = (rows[:, None] * cols[None, :]).astype(x.dtype)[None, :, :, None]
    return np.asarray(total / counts, dtype=x.dtype)


defop(
    "MaxPool",
    STRUCTURED,
    _pool_shape,
    dtype=_dtype_rule(FLOATS),
    reference=_max_pool,
    doc="max over each window (NHWC); padding never wins; NaN in a window gives NaN",
)
defop(
    "AvgPool",
    STRUCTURED,
    _pool_shape,
    dtype=_dtype_rule(FLOATS),
    reference=_avg_pool,
    doc="mean over each window (NHWC); SAME averages the cells inside the input only",
)


def _pool(
    op_type: str,
    value: Any,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: Any,
    name: str | None,
) -> Tensor:
    _nhwc_only(data_format, op_type, name)
    attrs = {
        "ksize": _spatial(ksize, "ksize", op_type, name),
        "strides": _spatial(strides, "strides", op_type, name),
        "padding": _padding(padding, op_type, name, False)[0],
    }
    x = convert_to_tensor(value)
    _float_operands(x.dtype, op_type, name)
    return apply_op(op_type, [x], attrs, name=name or op_type).outputs[0]


def max_pool2d(
    input: Any,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NHWC",
    name: str | None = None,
) -> Tensor:
    """The max of each window of NHWC images (MaxPool op).

    Args:
      input: float tensor [batch, height, width, channels].
      ksize: window size: an int, or 1, 2 or 4 ints (with 4: [1, kh, kw, 1]).
      strides: the same forms as ksize.
      padding: "SAME" (padded cells never win) or "VALID".
      data_format: "NHWC" (NCHW is not supported).
      name: name of the op.

    Raises:
      InvalidArgumentError: bad ksize, strides, padding or input rank.
      UnimplementedError: data_format "NCHW".
    """
    return _pool("MaxPool", input, ksize, strides, padding, data_format, name)


def max_pool(
    value: Any = None,
    ksize: Any = None,
    strides: Any = None,
    padding: Any = None,
    data_format: str = "NHWC",
    name: str | None = None,
    input: Any = None,
) -> Tensor:
    """TF1's max_pool: `max_pool2d` with the input named `value` (or `input`)."""
    return _pool(
        "MaxPool",
        _pool_input(value, input, "MaxPool", name),
        ksize,
        strides,
        padding,
        data_format,
        name,
    )


def avg_pool2d(
    input: Any,
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: str = "NHWC",
    name: str | None = None,
) -> Tensor:
    """The mean of each window of NHWC images (AvgPool op).

    With SAME padding, a window at the border averages only the cells inside
    the input, as TF does. Arguments as in `max_pool2d`.
    """
    return _pool("AvgPool", input, ksize, strides, padding, data_format, name)


def avg_pool(
    value: Any = None,
    ksize: Any = None,
    strides: Any = None,
    padding: Any = None,
    data_format: str = "NHWC",
    name: str | None = None,
    input: Any = None,
) -> Tensor:
    """TF1's avg_pool: `avg_pool2d` with the input named `value` (or `input`)."""
    return _pool(
        "AvgPool",
        _pool_input(value, input, "AvgPool", name),
        ksize,
        strides,
        padding,
        data_format,
        name,
    )


def _pool_input(value: Any, input: Any, op_type: str, name: str | None) -> Any:
    if (value is None) == (input is None):
        raise _user_error(
            errors.InvalidArgumentError,
            op_type,
            name,
            "give the input as exactly one of value and input",
            expected="max_pool(value, ksize, strides, padding)",
        )
    return value if value is not None else input
