"""Every user error of the array ops: the exception type and the key facts of its message.

A message must name the op type, the user's line (this file) and what came.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors
from graphflow.ops import array_ops

HERE = "test_array_errors.py"


def assert_message(error: pytest.ExceptionInfo, *facts: str) -> None:
    message = str(error.value)
    for fact in (HERE, *facts):
        assert fact in message, f"{fact!r} not in {message!r}"


MODE = {"mode": "compiled"}


@pytest.fixture(autouse=True, params=["compiled", "interpreted"])
def mode(request):
    """Run-time errors are checked in both Session modes: the same facts must come out."""
    MODE["mode"] = request.param
    return request.param


def run(fetch, feeds):
    with gf.Session(mode=MODE["mode"]) as sess:
        return sess.run(fetch, feed_dict=feeds)


@pytest.fixture
def x():
    return gf.placeholder(gf.float32, shape=[2, 3, 4], name="x")


@pytest.fixture
def batch():
    return gf.placeholder(gf.float32, shape=[None, 3], name="batch")


# -- reshape -----------------------------------------------------------------------------------
def test_reshape_size_mismatch(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(x, [5, 5])
    assert_message(e, "Reshape", "(2, 3, 4)", "[5, 5]", "24 elements", "25 elements")


def test_reshape_minus_one_does_not_divide(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(x, [5, -1])
    assert_message(e, "Reshape", "[5, -1]", "24 elements", "a multiple of 5")


def test_reshape_unknown_dims_cannot_fit(batch) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(batch, [4])
    assert_message(e, "Reshape", "(?, 3)", "a multiple of 3 elements", "4 elements")


def test_reshape_two_minus_ones(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(x, [-1, -1])
    assert_message(e, "Reshape", "[-1, -1]", "at most one -1")


def test_reshape_minus_one_next_to_zero() -> None:
    empty = gf.placeholder(gf.float32, shape=[0, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(empty, [-1, 0])
    assert_message(e, "Reshape", "a -1 next to a 0 dim")


def test_reshape_non_int_shape(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.reshape(x, [2.5, 4])
    assert_message(e, "Reshape", "shape must be a list of ints", "2.5")


def test_reshape_computed_shape_is_unimplemented(x, batch) -> None:
    with pytest.raises(errors.UnimplementedError) as e:
        gf.reshape(x, gf.shape(batch))
    assert_message(e, "Reshape", "must be known when the graph is built", "Shape:0")


def test_reshape_size_mismatch_at_run_time(batch) -> None:
    y = gf.reshape(batch, [2, -1])
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((3, 3), np.float32)})
    assert_message(e, "Reshape", "shape (3, 3)", "9 elements", "[2, -1]")


# -- transpose, expand_dims, squeeze -----------------------------------------------------------
def test_transpose_repeated_axis(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.transpose(x, [0, 0, 1])
    assert_message(e, "Transpose", "perm [0, 0, 1]", "rank 3", "a permutation of [0, 1, 2]")


def test_transpose_perm_of_wrong_length(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.transpose(x, [1, 0])
    assert_message(e, "Transpose", "perm [1, 0]", "a permutation of [0, 1, 2]")


def test_expand_dims_axis_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.expand_dims(x, -5)
    assert_message(e, "ExpandDims", "axis -5", "[-4, 3]")


def test_expand_dims_without_axis(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.expand_dims(x)
    assert_message(e, "ExpandDims", "axis=None", "an int axis")


def test_squeeze_dim_not_of_size_one(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.squeeze(x, [1])
    assert_message(e, "Squeeze", "dim 1 of size 3", "(2, 3, 4)", "size 1")


def test_squeeze_axis_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.squeeze(x, 3)
    assert_message(e, "Squeeze", "axis 3", "[-3, 3)")


def test_squeeze_unknown_dim_not_one_at_run_time(batch) -> None:
    y = gf.squeeze(batch, 0)
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((2, 3), np.float32)})
    assert_message(e, "Squeeze", "axis 0", "(2, 3)", "size 1")


# -- concat, stack, unstack, split -------------------------------------------------------------
def test_concat_dtypes_differ(x) -> None:
    other = gf.placeholder(gf.int32, shape=[2, 3, 4])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([x, other], 0)
    assert_message(e, "ConcatV2", "float32, int32", "cast")


def test_concat_shapes_differ(x) -> None:
    other = gf.placeholder(gf.float32, shape=[2, 5, 4])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([x, other], 0)
    assert_message(e, "ConcatV2", "(2, 3, 4), (2, 5, 4)", "every dim but the axis 0")


def test_concat_axis_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([x, x], 3)
    assert_message(e, "ConcatV2", "axis 3", "[-3, 3)")


def test_concat_scalars() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([gf.constant(1.0), gf.constant(2.0)], 0)
    assert_message(e, "ConcatV2", "scalars", "gf.stack")


def test_concat_no_values() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([], 0)
    assert_message(e, "ConcatV2", "an empty list")


def test_concat_data_that_does_not_fit_the_dtype() -> None:
    ints = gf.placeholder(gf.int32, shape=[2])
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.concat([ints, [0.5, 1.5]], 0)
    assert_message(e, "ConcatV2", "float", "int32")


def test_concat_shapes_differ_at_run_time(batch) -> None:
    other = gf.placeholder(gf.float32, shape=[None, None])
    y = gf.concat([batch, other], 0)
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((1, 3), np.float32), other: np.zeros((1, 2), np.float32)})
    assert_message(e, "ConcatV2", "(1, 3), (1, 2)")


def test_stack_shapes_differ(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.stack([x, gf.placeholder(gf.float32, shape=[2, 3])])
    assert_message(e, "Pack", "different ranks", "(2, 3, 4), (2, 3)")


def test_stack_axis_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.stack([x, x], axis=4)
    assert_message(e, "Pack", "axis 4", "[-4, 3]")


def test_unstack_unknown_size(batch) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        array_ops.unstack(batch)
    assert_message(e, "Unpack", "(?, 3)", "num=")


def test_unstack_num_mismatch(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        array_ops.unstack(x, num=3)
    assert_message(e, "Unpack", "num=3", "num=2")


def test_split_not_divisible(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.split(x, 3, axis=-1)
    assert_message(e, "Split", "dim 2 of size 4 into 3", "divisible by 3")


def test_split_sizes_do_not_add_up(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.split(x, [1, 1], axis=1)
    assert_message(e, "Split", "size_splits [1, 1]", "summing to 3")


def test_split_two_minus_ones(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.split(x, [-1, -1, 1], axis=1)
    assert_message(e, "Split", "[-1, -1, 1]", "at most one -1")


def test_split_num_mismatch(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.split(x, [1, 2], axis=1, num=3)
    assert_message(e, "Split", "num=3", "num=2")


def test_split_not_divisible_at_run_time(batch) -> None:
    parts = gf.split(batch, 2)
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(parts, {batch: np.zeros((3, 3), np.float32)})
    assert_message(e, "Split", "2 equal parts", "(3, 3)")


# -- slice, strided_slice, t[...] --------------------------------------------------------------
def test_slice_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.slice(x, [0, 2, 0], [1, 2, 1])
    assert_message(e, "Slice", "dim 1", "begin [0, 2, 0], size [1, 2, 1]", "(2, 3, 4)")


def test_slice_negative_begin(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.slice(x, [-1, 0, 0], [1, 1, 1])
    assert_message(e, "Slice", "dim 0", "begin [-1, 0, 0]")


def test_slice_wrong_length(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.slice(x, [0, 0], [1, 1])
    assert_message(e, "Slice", "begin [0, 0], size [1, 1]", "rank 3", "3 entries each")


def test_slice_out_of_range_at_run_time(batch) -> None:
    y = gf.slice(batch, [1, 0], [2, -1])
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((2, 3), np.float32)})
    assert_message(e, "Slice", "begin [1, 0], size [2, -1]", "(2, 3)")


@pytest.mark.parametrize("index", [2, -3])
def test_getitem_index_out_of_range(x, index) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        x[index]
    assert_message(e, "StridedSlice", f"index {index}", "dim 0 of size 2", "[-2, 2)")


def test_getitem_too_many_indices(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        x[0, 0, 0, 0]
    assert_message(e, "StridedSlice", "4 indices", "rank 3")


def test_getitem_two_ellipses(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        x[..., 0, ...]
    assert_message(e, "StridedSlice", "2 ellipses")


def test_getitem_zero_step(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        x[:, ::0]
    assert_message(e, "StridedSlice", "step of 0 in dim 1", "non-zero")


@pytest.mark.parametrize(
    ("key", "came"), [([0, 1], "[0, 1]"), (1.5, "1.5 (float)"), (True, "True")]
)
def test_getitem_unsupported_key(x, key, came) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        x[key]
    assert_message(e, "StridedSlice", came)


def test_getitem_computed_index_is_unimplemented(x) -> None:
    i = gf.placeholder(gf.int32, shape=[])
    with pytest.raises(errors.UnimplementedError) as e:
        x[i]
    assert_message(e, "StridedSlice", "must be known when the graph is built", i.name)


def test_getitem_index_out_of_range_at_run_time(batch) -> None:
    y = batch[-5]
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((4, 3), np.float32)})
    assert_message(e, "StridedSlice", "index -5", "(4, 3)", "[-4, 4)")


def test_slice_wrong_length_at_run_time() -> None:
    anything = gf.placeholder(gf.float32, shape=None)
    y = gf.slice(anything, [0], [1])
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {anything: np.zeros((2, 3), np.float32)})
    assert_message(e, "Slice", "begin [0], size [1]", "2 entries each")


def test_strided_slice_lengths_differ(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.strided_slice(x, [0, 0], [1], [1, 1])
    assert_message(e, "StridedSlice", "begin [0, 0], end [1], strides [1, 1]")


# -- gather and one_hot ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [3, -1])
def test_gather_index_out_of_range_at_run_time(batch, bad) -> None:
    indices = gf.placeholder(gf.int32, shape=[None])
    y = gf.gather(batch, indices)
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((3, 3), np.float32), indices: [0, 2, bad]})
    assert_message(e, "GatherV2", f"indices[2] = {bad}", "[0, 3)")


def test_gather_float_indices(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.gather(x, [0.0, 1.0])
    assert_message(e, "GatherV2", "indices of dtype float32", "int32 or int64")


def test_gather_axis_out_of_range(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.gather(x, [0], axis=-4)
    assert_message(e, "GatherV2", "axis -4", "[-3, 3)")


def test_gather_from_a_scalar() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.gather(gf.constant(1.0), [0])
    assert_message(e, "GatherV2", "rank 0", "rank >= 1")


def test_gather_batch_dims_is_unimplemented(x) -> None:
    with pytest.raises(errors.UnimplementedError) as e:
        gf.gather(x, [[0]], batch_dims=1)
    assert_message(e, "GatherV2", "batch_dims=1", "batch_dims=0")


def test_one_hot_float_indices() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.one_hot([0.0, 1.0], 3)
    assert_message(e, "OneHot", "indices of dtype float32", "int32 or int64")


def test_one_hot_negative_depth() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.one_hot([0, 1], -2)
    assert_message(e, "OneHot", "depth -2", "depth >= 0")


def test_one_hot_axis_out_of_range() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.one_hot([0, 1], 3, axis=2)
    assert_message(e, "OneHot", "axis 2", "[-1, 1]")


def test_one_hot_value_that_does_not_fit_the_dtype() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.one_hot([0, 1], 3, on_value=1.5, dtype=gf.int32)
    assert_message(e, "OneHot", "on_value", "int32")


def test_one_hot_values_not_scalars() -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.one_hot([0, 1], 3, on_value=[1.0, 2.0])
    assert_message(e, "OneHot", "scalars", "(2,)")


# -- tile, broadcast_to, pad, shape ------------------------------------------------------------
def test_tile_multiples_of_wrong_length(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.tile(x, [2, 2])
    assert_message(e, "Tile", "multiples [2, 2]", "(2, 3, 4)", "3 entries")


def test_tile_negative_multiples(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.tile(x, [1, -1, 1])
    assert_message(e, "Tile", "multiples [1, -1, 1]", ">= 0")


def test_broadcast_to_incompatible(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.broadcast_to(x, [2, 5, 4])
    assert_message(e, "BroadcastTo", "(2, 3, 4) to shape [2, 5, 4]")


def test_broadcast_to_fewer_dims(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.broadcast_to(x, [3, 4])
    assert_message(e, "BroadcastTo", "(2, 3, 4) to shape [3, 4]", "no more dims")


def test_broadcast_to_unknown_dim_at_run_time(batch) -> None:
    y = gf.broadcast_to(batch, [4, 3])
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((2, 3), np.float32)})
    assert_message(e, "BroadcastTo", "(2, 3)", "[4, 3]")


def test_pad_unknown_mode(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.pad(x, [[0, 0]] * 3, mode="wrap")
    assert_message(e, "PadV2", "'WRAP'", "CONSTANT, REFLECT, SYMMETRIC")


@pytest.mark.parametrize(("mode", "limit"), [("REFLECT", 2), ("SYMMETRIC", 3)])
def test_pad_mirror_larger_than_dim(x, mode, limit) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.pad(x, [[0, 0], [0, limit + 1], [0, 0]], mode=mode)
    assert_message(e, "PadV2", mode, f"[0, {limit + 1}] for dim 1 of size 3", f"<= {limit}")


def test_pad_paddings_of_wrong_shape(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.pad(x, [1, 1])
    assert_message(e, "PadV2", "[1, 1]", "shape [3, 2]")


def test_pad_negative_paddings(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.pad(x, [[0, 0], [-1, 0], [0, 0]])
    assert_message(e, "PadV2", "[-1, 0]", ">= 0")


def test_pad_constant_values_not_a_scalar(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.pad(x, [[0, 0]] * 3, constant_values=[1.0, 2.0])
    assert_message(e, "PadV2", "constant_values must be a scalar", "(2,)")


def test_pad_reflect_larger_than_dim_at_run_time(batch) -> None:
    y = gf.pad(batch, [[2, 0], [0, 0]], mode="REFLECT")
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {batch: np.zeros((2, 3), np.float32)})
    assert_message(e, "PadV2", "REFLECT", "[2, 0]", "size 2", "<= 1")


def test_pad_paddings_of_wrong_length_at_run_time() -> None:
    anything = gf.placeholder(gf.float32, shape=None)
    y = gf.pad(anything, [[1, 1]])
    with pytest.raises(errors.InvalidArgumentError) as e:
        run(y, {anything: np.zeros((2, 3), np.float32)})
    assert_message(e, "PadV2", "1 pairs", "2 for shape (2, 3)")


def test_shape_float_out_type(x) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        gf.shape(x, out_type=gf.float32)
    assert_message(e, "Shape", "float32", "int32 or int64")
