"""Every user error of matmul, the reductions and the nn ops: its type and its message's facts.

Each message must name the op type, the user's line (this file) and what came.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors

THIS_FILE = "test_nn_errors.py"


def _check(excinfo: pytest.ExceptionInfo, *facts: str) -> None:
    message = str(excinfo.value)
    assert THIS_FILE in message, message
    for fact in facts:
        assert fact in message, f"{fact!r} not in: {message}"


def _run(fetch, feeds):
    with gf.Session(mode="interpreted") as sess:
        return sess.run(fetch, feed_dict=feeds)


# -- matmul ------------------------------------------------------------------------------------
def test_matmul_inner_dims_mismatch():
    a = gf.placeholder(gf.float32, [2, 3])
    b = gf.placeholder(gf.float32, [4, 5])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.matmul(a, b)
    _check(e, "MatMul", "inner dimensions", "(2, 3)", "(4, 5)", "3 vs 4")


def test_matmul_inner_dims_mismatch_after_transpose():
    a = gf.placeholder(gf.float32, [2, 3])
    b = gf.placeholder(gf.float32, [3, 2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.matmul(a, b, transpose_b=True)
    _check(e, "MatMul", "(2, 3)", "(3, 2)", "transpose_b=True", "3 vs 2")


def test_matmul_rank_below_two():
    a = gf.placeholder(gf.float32, [3])
    b = gf.placeholder(gf.float32, [3, 2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.matmul(a, b)
    _check(e, "MatMul", "rank 2", "(3,)")


def test_matmul_batch_dims_do_not_broadcast():
    a = gf.placeholder(gf.float32, [2, 3, 4])
    b = gf.placeholder(gf.float32, [5, 4, 6])
    with pytest.raises(errors.InvalidArgumentError) as e:
        _ = a @ b
    _check(e, "MatMul", "batch dimensions", "(2, 3, 4)", "(5, 4, 6)")


def test_matmul_of_bools():
    a = gf.placeholder(gf.bool, [2, 2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.matmul(a, a)
    _check(e, "MatMul", "bool")


def test_matmul_transpose_and_adjoint_together():
    a = gf.placeholder(gf.float32, [2, 2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.matmul(a, a, transpose_a=True, adjoint_a=True)
    _check(e, "MatMul", "transpose_a and adjoint_a")


# -- reductions --------------------------------------------------------------------------------
def test_reduction_axis_out_of_range():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_sum(x, axis=[0, 2])
    _check(e, "Sum", "axis 2 for an input of rank 2", "[-2, 2)")


def test_reduction_negative_axis_out_of_range():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_mean(x, axis=-3, name="my_mean")
    _check(e, "Mean", "'my_mean'", "axis -3")


def test_reduction_axis_not_ints():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_max(x, axis=[0.5])
    _check(e, "Max", "axis must be a list of ints", "0.5")


def test_reduction_axis_out_of_range_at_run_time_for_unknown_rank():
    x = gf.placeholder(gf.float32, None)
    y = gf.reduce_sum(x, axis=3)
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(y, {x: np.zeros((2, 2), np.float32)})
    _check(e, "Sum", "axis 3", "rank 2")


def test_reduce_any_of_floats():
    x = gf.placeholder(gf.float32, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_any(x)
    _check(e, "Any", "unsupported dtype", "float32", "bool")


def test_reduce_sum_of_bools():
    x = gf.placeholder(gf.bool, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_sum(x)
    _check(e, "Sum", "unsupported dtype", "got bool", "cast")


def test_keepdims_and_keep_dims_disagree():
    x = gf.placeholder(gf.float32, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reduce_sum(x, keepdims=True, keep_dims=False)
    _check(e, "Sum", "keep_dims", "keepdims=True")


def test_argmax_axis_out_of_range():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.argmax(x, axis=2)
    _check(e, "ArgMax", "axis 2 for an input of rank 2")


def test_argmin_of_an_empty_axis():
    x = gf.placeholder(gf.float32, [0, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.argmin(x, axis=0)
    _check(e, "ArgMin", "empty axis", "(0, 3)")


def test_argmax_of_an_axis_empty_at_run_time():
    x = gf.placeholder(gf.float32, [None, 3])
    y = gf.argmax(x, axis=0)
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(y, {x: np.zeros((0, 3), np.float32)})
    _check(e, "ArgMax", "empty", "(0, 3)")


def test_argmax_output_type_float():
    x = gf.placeholder(gf.float32, [3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.argmax(x, output_type=gf.float32)
    _check(e, "ArgMax", "output_type", "float32", "int32 or int64")


# -- activations and softmax -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fn", "op_type"),
    [
        (gf.nn.elu, "Elu"),
        (gf.nn.selu, "Selu"),
        (gf.nn.softplus, "Softplus"),
        (gf.nn.gelu, "Gelu"),
        (gf.nn.silu, "Silu"),
        (gf.nn.leaky_relu, "LeakyRelu"),
        (gf.nn.softmax, "Softmax"),
        (gf.nn.log_softmax, "LogSoftmax"),
        (gf.nn.l2_loss, "L2Loss"),
    ],
)
def test_float_only_ops_reject_ints(fn, op_type):
    x = gf.placeholder(gf.int32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        fn(x)
    _check(e, op_type, "unsupported dtype", "got int32", "float32")


def test_relu_of_bools():
    x = gf.placeholder(gf.bool, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.relu(x)
    _check(e, "Relu", "unsupported dtype", "got bool")


def test_softmax_axis_out_of_range():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.softmax(x, axis=2)
    _check(e, "Softmax", "axis 2 for an input of rank 2")


def test_softmax_of_a_scalar():
    x = gf.placeholder(gf.float32, [])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.log_softmax(x)
    _check(e, "LogSoftmax", "axis -1 for an input of rank 0")


def test_softmax_axis_and_dim():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.softmax(x, axis=0, dim=1)
    _check(e, "Softmax", "dim")


# -- cross-entropy -----------------------------------------------------------------------------
SPARSE = "SparseSoftmaxCrossEntropyWithLogits"


def test_sparse_xent_label_out_of_range_at_run_time():
    logits = gf.placeholder(gf.float32, [None, 5])
    labels = gf.placeholder(gf.int64, [None])
    loss = gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    feeds = {logits: np.zeros((3, 5), np.float32), labels: np.array([0, 7, 1])}
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(loss, feeds)
    _check(e, SPARSE, "label value of 7", "[0, 5)")


def test_sparse_xent_negative_label_at_run_time():
    logits = gf.placeholder(gf.float64, [2, 3])
    labels = gf.placeholder(gf.int32, [2])
    loss = gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(loss, {logits: np.zeros((2, 3)), labels: np.array([-1, 0], np.int32)})
    _check(e, SPARSE, "label value of -1", "[0, 3)")


def test_sparse_xent_positional_arguments():
    logits = gf.placeholder(gf.float32, [2, 3])
    labels = gf.placeholder(gf.int32, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    _check(e, SPARSE, "named arguments", "labels=..., logits=...")


def test_sparse_xent_missing_logits():
    labels = gf.placeholder(gf.int32, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels)
    _check(e, SPARSE, "got no logits")


def test_sparse_xent_float_labels():
    logits = gf.placeholder(gf.float32, [2, 3])
    labels = gf.placeholder(gf.float32, [2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    _check(e, SPARSE, "class indices", "got float32", "int32 or int64")


def test_sparse_xent_labels_shape():
    logits = gf.placeholder(gf.float32, [4, 3])
    labels = gf.placeholder(gf.int32, [3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    _check(e, SPARSE, "labels of shape (3,)", "expected labels of shape (4,)")


@pytest.mark.parametrize(
    "fn",
    [gf.nn.softmax_cross_entropy_with_logits, gf.nn.softmax_cross_entropy_with_logits_v2],
)
def test_xent_positional_arguments(fn):
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        fn(x, x)
    _check(e, "SoftmaxCrossEntropyWithLogits", "named arguments")


def test_xent_shapes_differ():
    logits = gf.placeholder(gf.float32, [2, 3])
    labels = gf.placeholder(gf.float32, [2, 4])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    _check(e, "SoftmaxCrossEntropyWithLogits", "(2, 3)", "(2, 4)", "equal shapes")


def test_xent_shapes_differ_at_run_time():
    logits = gf.placeholder(gf.float32, [None, 3])
    labels = gf.placeholder(gf.float32, [None, 3])
    loss = gf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    feeds = {logits: np.zeros((2, 3), np.float32), labels: np.zeros((4, 3), np.float32)}
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(loss, feeds)
    _check(e, "SoftmaxCrossEntropyWithLogits", "(2, 3)", "(4, 3)")


# -- bias_add and moments ----------------------------------------------------------------------
def test_bias_add_size_mismatch():
    x = gf.placeholder(gf.float32, [2, 3])
    b = gf.placeholder(gf.float32, [4])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.bias_add(x, b)
    _check(
        e, "BiasAdd", "value of shape (2, 3)", "bias of shape (4,)", "expected bias of shape (3,)"
    )


def test_bias_add_bias_not_1d():
    x = gf.placeholder(gf.float32, [2, 3])
    b = gf.placeholder(gf.float32, [1, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.bias_add(x, b)
    _check(e, "BiasAdd", "1-D", "(1, 3)")


def test_bias_add_value_rank_one():
    x = gf.placeholder(gf.float32, [3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.bias_add(x, x)
    _check(e, "BiasAdd", "rank 2", "(3,)")


def test_bias_add_nchw_mismatch():
    x = gf.placeholder(gf.float32, [2, 3, 4, 5])
    b = gf.placeholder(gf.float32, [5])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.bias_add(x, b, data_format="NCHW")
    _check(e, "BiasAdd", "NCHW", "(2, 3, 4, 5)", "expected bias of shape (3,)")


def test_bias_add_unknown_data_format():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.bias_add(x, gf.placeholder(gf.float32, [3]), data_format="CHWN")
    _check(e, "BiasAdd", "data_format", "'CHWN'")


def test_moments_axis_out_of_range():
    x = gf.placeholder(gf.float32, [2, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.moments(x, axes=[2])
    _check(e, "Mean", "axis 2 for an input of rank 2")


# -- conv2d and pooling ------------------------------------------------------------------------
def _images(shape=(1, 5, 5, 2)):
    return gf.placeholder(gf.float32, list(shape))


def _filter(shape=(3, 3, 2, 4)):
    return gf.placeholder(gf.float32, list(shape))


def test_conv2d_bad_padding_string():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=1, padding="same")
    _check(e, "Conv2D", "invalid padding", "got 'same'", "'SAME' or 'VALID'")


def test_conv2d_bad_explicit_padding():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=1, padding=[[1, 1], [1, 1], [0, 0], [0, 0]])
    _check(e, "Conv2D", "invalid padding", "[[1, 1], [1, 1]")


def test_conv2d_missing_padding():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=1)
    _check(e, "Conv2D", "invalid padding", "got None")


def test_conv2d_channel_mismatch():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter((3, 3, 3, 4)), strides=1, padding="SAME")
    _check(e, "Conv2D", "in_channels", "(1, 5, 5, 2)", "(3, 3, 3, 4)")


def test_conv2d_rank():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(gf.placeholder(gf.float32, [5, 5, 2]), _filter(), strides=1, padding="SAME")
    _check(e, "Conv2D", "4-D", "(5, 5, 2)")


def test_conv2d_strides_in_batch_dim():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=[2, 1, 1, 1], padding="SAME")
    _check(e, "Conv2D", "strides in the batch and channel dims must be 1", "[2, 1, 1, 1]")


def test_conv2d_strides_of_three_entries():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=[1, 1, 1], padding="SAME")
    _check(e, "Conv2D", "1, 2 or 4 entries", "[1, 1, 1]")


def test_conv2d_zero_dilation():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=1, padding="SAME", dilations=0)
    _check(e, "Conv2D", "dilations must be >= 1")


def test_conv2d_nchw_is_unimplemented():
    with pytest.raises(errors.UnimplementedError) as e:
        gf.nn.conv2d(_images(), _filter(), strides=1, padding="SAME", data_format="NCHW")
    _check(e, "Conv2D", "NCHW", "'NHWC'")


def test_conv2d_of_ints():
    x = gf.placeholder(gf.int32, [1, 5, 5, 2])
    f = gf.placeholder(gf.int32, [3, 3, 2, 4])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(x, f, strides=1, padding="SAME")
    _check(e, "Conv2D", "unsupported dtype", "int32")


def test_conv2d_window_larger_than_input():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(
            _images((1, 2, 2, 2)), _filter((4, 4, 2, 1)), strides=1, padding="VALID", dilations=2
        )
    _check(e, "Conv2D", "larger than the padded input", "(1, 2, 2, 2)")


def test_conv2d_window_larger_than_input_at_run_time():
    x = gf.placeholder(gf.float32, [1, None, None, 2])
    f = _filter((5, 5, 2, 1))
    y = gf.nn.conv2d(x, f, strides=1, padding="VALID")
    feeds = {x: np.zeros((1, 2, 2, 2), np.float32), f: np.zeros((5, 5, 2, 1), np.float32)}
    with pytest.raises(errors.InvalidArgumentError) as e:
        _run(y, feeds)
    _check(e, "Conv2D", "negative", "(1, 2, 2, 2)")


def test_conv2d_filter_and_filters():
    f = _filter()
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.conv2d(_images(), f, strides=1, padding="SAME", filters=f)
    _check(e, "Conv2D", "filter and filters")


@pytest.mark.parametrize(
    ("fn", "op_type"), [(gf.nn.max_pool, "MaxPool"), (gf.nn.avg_pool2d, "AvgPool")]
)
def test_pool_bad_padding(fn, op_type):
    with pytest.raises(errors.InvalidArgumentError) as e:
        fn(_images(), 2, 2, "FULL")
    _check(e, op_type, "invalid padding", "'FULL'")


def test_pool_explicit_padding_is_not_accepted():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.max_pool2d(_images(), 2, 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
    _check(e, "MaxPool", "invalid padding")


def test_pool_rank():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.avg_pool(gf.placeholder(gf.float32, [5, 5, 2]), 2, 2, "VALID")
    _check(e, "AvgPool", "4-D", "(5, 5, 2)")


def test_pool_ksize_in_channel_dim():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.max_pool(_images(), [1, 2, 2, 2], 1, "VALID")
    _check(e, "MaxPool", "ksize in the batch and channel dims must be 1")


def test_pool_nchw_is_unimplemented():
    with pytest.raises(errors.UnimplementedError) as e:
        gf.nn.avg_pool(_images(), 2, 2, "VALID", data_format="NCHW")
    _check(e, "AvgPool", "NCHW")


def test_pool_of_ints():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.max_pool2d(gf.placeholder(gf.int64, [1, 4, 4, 1]), 2, 2, "VALID")
    _check(e, "MaxPool", "unsupported dtype", "int64")


def test_pool_window_larger_than_input():
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.nn.max_pool(_images((1, 2, 2, 1)), 4, 1, "VALID")
    _check(e, "MaxPool", "larger than the padded input")
