"""The array ops' lowering: checked gathers, slices over run-time dims, one executable per graph.

The op tables (tests/cases_array.py) check values in every variant; these
tests check what the tables cannot see: that a graph compiled (no fallback
to the interpreter), that one executable serves many run-time shapes, and
that bad data fails with an error naming the op and the user's line.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf
from graphflow.compiler.lowering.module import lowerable
from graphflow.compiler.pipeline import optimize

HERE = "test_lower_array.py"


def assert_compiled_once(sess: gf.Session) -> None:
    info = sess.cache_info()
    assert info.fallbacks == ()
    assert info.compiled == 1


# -- gather: a checked kernel ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("params_shape", "bad", "bound"),
    [
        ([4, 3], 4, "[0, 4)"),
        ([4, 3], -1, "[0, 4)"),
        ([None, 3], 7, "[0, 4)"),  # the size known only at run time
        ([4, 0], -2, "[0, 4)"),  # an empty output still checks every index
    ],
)
def test_gather_index_out_of_range_names_the_op_line_and_value(
    params_shape: list[int | None], bad: int, bound: str
) -> None:
    params = gf.placeholder(gf.float32, params_shape)
    indices = gf.placeholder(gf.int64, [None])
    y = gf.gather(params, indices, name="lookup")
    rows = 4 if params_shape[0] is None else params_shape[0]
    feed = {params: np.zeros((rows, params_shape[1]), np.float32), indices: [0, 3, bad, 1]}
    with gf.Session(mode="compiled") as sess:
        with pytest.raises(gf.errors.InvalidArgumentError) as e:
            sess.run(y, feed)
        assert_compiled_once(sess)
        feed[indices] = [3, 0]  # the executable still runs after a failure
        assert sess.run(y, feed).shape == (2, params_shape[1])
    message = str(e.value)
    for fact in ("GatherV2 op 'lookup'", HERE, f"indices[2] = {bad}", bound):
        assert fact in message, f"{fact!r} not in {message!r}"


def test_gather_of_a_scalar_index_from_a_non_contiguous_feed() -> None:
    # A 0-d feed next to a strided one: making the inputs contiguous kept it 0-d.
    params = gf.placeholder(gf.int32, [5, 3])
    index = gf.placeholder(gf.int32, [])
    y = gf.gather(params, index)
    data = np.arange(30, dtype=np.int32).reshape(5, 6)[:, ::2]
    with gf.Session(mode="compiled") as sess:
        got = sess.run(y, {params: data, index: 3})
        assert_compiled_once(sess)
    np.testing.assert_array_equal(got, data[3])


# -- strided slices over dims known only at run time -----------------------------------------
_NEGATIVE_STEP_KEYS = [
    (slice(None, None, -1), slice(None, None, -2)),
    (slice(-2, None, -3), slice(1, -1)),
    (slice(100, -100, -1), slice(-1, 0, -1)),
    (slice(0, None, -1), 0),
    (-1, slice(5, 1, -2)),
    (None, slice(-3, -100, -2), Ellipsis),
]


@pytest.mark.parametrize("key", _NEGATIVE_STEP_KEYS, ids=repr)
def test_negative_step_slices_with_run_time_dims(key: tuple[object, ...]) -> None:
    x = gf.placeholder(gf.float64, [None, None])
    y = x[key]
    rng = np.random.default_rng(0)
    with gf.Session(mode="compiled") as sess:
        # One executable for every size; sizes 1 and 2 clamp most bounds.
        for shape in ((7, 9), (1, 6), (2, 1), (3, 2), (12, 5)):
            data = rng.standard_normal(shape)
            np.testing.assert_array_equal(sess.run(y, {x: data}), data[key])
        assert_compiled_once(sess)


def test_empty_results_of_run_time_slices() -> None:
    x = gf.placeholder(gf.int32, [None])
    keys = [slice(5, None), slice(None, None, -1), slice(-1, -9, -4)]
    ys = [x[k] for k in keys]
    with gf.Session(mode="compiled") as sess:
        for n in (0, 1, 4, 9):
            data = np.arange(n, dtype=np.int32)
            for got, key in zip(sess.run(ys, {x: data}), keys):
                np.testing.assert_array_equal(got, data[key])
        assert_compiled_once(sess)


# -- one executable for a graph of several array ops -----------------------------------------
def test_a_graph_of_array_ops_compiles_to_one_executable() -> None:
    x = gf.placeholder(gf.float32, [None, 6], name="x")
    labels = gf.placeholder(gf.int32, [None], name="labels")
    left, middle, right = gf.split(x, [2, -1, 1], axis=1)
    joined = gf.concat([right, left[:, ::-1]], axis=1)  # [n, 3]
    stacked = gf.stack([joined, gf.tile(middle[:, :1], [1, 3])], axis=-1)  # [n, 3, 2]
    padded = gf.pad(stacked, [[0, 0], [1, 1], [0, 0]], mode="SYMMETRIC")  # [n, 5, 2]
    picked = gf.gather(padded, gf.range(4, 0, -2), axis=1)  # [n, 2, 2]
    hot = gf.one_hot(labels, 3, axis=0)  # [3, n]
    rows = gf.unstack(gf.broadcast_to(gf.reshape(hot, [3, -1, 1]), [3, 2, 4]), axis=1)
    sizes = gf.cast(gf.shape(x), gf.float32)
    out = [picked, rows[1], sizes]

    assert lowerable(optimize(out, [x, labels]).program) == []
    data = np.arange(12, dtype=np.float32).reshape(2, 6)
    label_data = np.array([2, -1], np.int32)
    with gf.Session(mode="compiled") as sess:
        got = sess.run(out, {x: data, labels: label_data})
        assert_compiled_once(sess)

    joined_ref = np.concatenate([data[:, 5:], data[:, :2][:, ::-1]], axis=1)
    stacked_ref = np.stack([joined_ref, np.tile(data[:, 2:3], [1, 3])], axis=-1)
    padded_ref = np.pad(stacked_ref, [[0, 0], [1, 1], [0, 0]], mode="symmetric")
    hot_ref = (label_data[None, :] == np.arange(3)[:, None]).astype(np.float32)
    np.testing.assert_array_equal(got[0], np.take(padded_ref, [4, 2], axis=1))
    np.testing.assert_array_equal(got[1], np.broadcast_to(hot_ref[:, :, None], (3, 2, 4))[:, 1])
    np.testing.assert_array_equal(got[2], [2.0, 6.0])


def test_unstack_and_split_with_unused_outputs() -> None:
    x = gf.placeholder(gf.int64, [None, 3])
    first, _, last = gf.unstack(x, axis=1)
    head, _ = gf.split(x, [1, 2], axis=1)
    data = np.arange(12, dtype=np.int64).reshape(4, 3)
    with gf.Session(mode="compiled") as sess:
        got = sess.run([first, last, head], {x: data})
        assert_compiled_once(sess)
    np.testing.assert_array_equal(got[0], data[:, 0])
    np.testing.assert_array_equal(got[1], data[:, 2])
    np.testing.assert_array_equal(got[2], data[:, :1])


# -- mirrored padding over run-time dims -----------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "smallest"),
    [("REFLECT", (3, 4)), ("SYMMETRIC", (2, 3)), ("CONSTANT", (0, 0))],  # paddings at the limit
)
def test_padding_over_run_time_dims(mode: str, smallest: tuple[int, int]) -> None:
    x = gf.placeholder(gf.int32, [None, None])
    y = gf.pad(x, [[2, 1], [0, 3]], mode=mode, constant_values=-7)
    with gf.Session(mode="compiled") as sess:
        for shape in (smallest, (4, 5), (6, 9)):
            data = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
            want = (
                np.pad(data, [[2, 1], [0, 3]], constant_values=-7)
                if mode == "CONSTANT"
                else np.pad(data, [[2, 1], [0, 3]], mode=mode.lower())
            )
            np.testing.assert_array_equal(sess.run(y, {x: data}), want)
        assert_compiled_once(sess)


# -- range and the shape queries -------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "limit", "delta", "dtype"),
    [
        (0.1, 7.3, 0.1, gf.float32),
        (-0.0, 3.0, 0.7, gf.float32),
        (1e7, 1e7 + 300.0, 3.3, gf.float32),
        (0.1, 9.9, 0.01, gf.float64),
        (5.5, -3.0, -0.3, gf.float64),
        (7, -40, -3, gf.int64),
        (0.5, 6, 1, gf.int32),
    ],
)
def test_range_is_bit_for_bit_numpy(
    start: float, limit: float, delta: float, dtype: gf.DType
) -> None:
    y = gf.range(start, limit, delta, dtype=dtype)
    with gf.Session(mode="compiled") as sess:
        got = sess.run(y)
        assert_compiled_once(sess)
    want = np.arange(start, limit, delta, dtype=dtype.np)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_shape_size_and_rank_are_computed_at_run_time() -> None:
    # Level O0 keeps the queries of static shapes too (fold would make them constants).
    x = gf.placeholder(gf.float32, [None, 3, None])
    queries = [gf.shape(x), gf.shape(x, out_type=gf.int64), gf.size(x), gf.rank(x)]
    with gf.Session(mode="compiled", level="O0") as sess:
        for shape in ((2, 3, 5), (0, 3, 1)):
            got = sess.run(queries, {x: np.zeros(shape, np.float32)})
            np.testing.assert_array_equal(got[0], shape)
            assert got[1].dtype == np.int64 and tuple(got[1]) == shape
            assert got[2] == np.prod(shape) and got[3] == 3
        assert_compiled_once(sess)
