"""The nn ops' lowering: checked labels, NaN and tie rules, padding, a CNN in one executable.

The op tables (tests/cases_nn.py, cases_reduction.py) check values in every
variant; these tests check what the tables cannot see: that a graph
compiled (no fallback to the interpreter), that bad labels fail with an
error naming the op, the user's line and the value, and the edge cases
where a plausible kernel is wrong (a padded cell winning a max, the last
NaN or the last tie winning an argmax, SAME padding computed from dims only
known at run time).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf

HERE = "test_lower_nn.py"


def assert_compiled_once(sess: gf.Session) -> None:
    info = sess.cache_info()
    assert info.fallbacks == ()
    assert info.compiled == 1


def run_compiled(fetches, feeds, level: str | None = None):
    with gf.Session(mode="compiled", level=level) as sess:
        out = sess.run(fetches, feeds)
        assert_compiled_once(sess)
    return out


# -- sparse cross-entropy: a checked kernel ----------------------------------------------------
@pytest.mark.parametrize(
    ("classes", "label_dtype", "bad", "bound"),
    [
        (5, gf.int64, 7, "[0, 5)"),
        (5, gf.int32, -1, "[0, 5)"),
        (None, gf.int32, 5, "[0, the number of classes)"),
    ],
)
def test_bad_label_names_the_op_line_and_value(classes, label_dtype, bad, bound) -> None:
    logits = gf.placeholder(gf.float32, [None, classes])
    labels = gf.placeholder(label_dtype, [None])
    loss = gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, name="xent")
    # The first bad label is reported, as the reference does, even after a good one.
    feed = {logits: np.zeros((4, 5), np.float32), labels: np.array([0, bad, 9, 1])}
    with gf.Session(mode="compiled") as sess:
        with pytest.raises(gf.errors.InvalidArgumentError) as e:
            sess.run(loss, feed)
        assert_compiled_once(sess)
        feed[labels] = np.array([4, 0, 2, 1])  # the executable still runs after a failure
        np.testing.assert_allclose(sess.run(loss, feed), np.full(4, np.log(5)), rtol=1e-6)
    message = str(e.value)
    facts = ("SparseSoftmaxCrossEntropyWithLogits op 'xent'", HERE, f"label value of {bad}", bound)
    for fact in facts:
        assert fact in message, f"{fact!r} not in {message!r}"


# -- argmax / argmin: first NaN, first tie -----------------------------------------------------
NAN, INF = np.nan, np.inf
ROWS = np.array(
    [
        [1.0, 5.0, NAN, 5.0, NAN],  # a NaN after the max wins, and the first NaN
        [2.0, 2.0, -2.0, -2.0, 2.0],  # ties: the first of each extreme
        [-INF, -INF, -INF, -INF, -INF],  # all equal to the initial best: index 0
        [INF, 3.0, INF, -INF, -INF],
        [0.0, -0.0, 0.0, -0.0, 0.0],  # -0 == 0: a tie
    ]
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [1, 0])  # the last axis, and one walked with contiguous rows
def test_argmax_argmin_nan_and_tie_semantics(dtype: str, axis: int) -> None:
    data = ROWS.astype(dtype)
    x = gf.placeholder(dtype, [None, None])
    fetches = [gf.argmax(x, axis=axis), gf.argmin(x, axis=axis, output_type=gf.int32)]
    got_max, got_min = run_compiled(fetches, {x: data})
    np.testing.assert_array_equal(got_max, np.argmax(data, axis=axis))
    np.testing.assert_array_equal(got_min, np.argmin(data, axis=axis))
    assert got_min.dtype == np.int32


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_argmax_argmin_ties_of_ints_and_bools(dtype: str) -> None:
    lowest = np.iinfo(dtype).min if dtype != "bool" else 0
    data = np.array([[3, 1, 3, 1], [lowest, lowest, 0, lowest], [0, 0, 0, 0]]).astype(dtype)
    x = gf.placeholder(dtype, [3, 4])
    got_max, got_min = run_compiled([gf.argmax(x, 1), gf.argmin(x, 1)], {x: data})
    np.testing.assert_array_equal(got_max, np.argmax(data, axis=1))
    np.testing.assert_array_equal(got_min, np.argmin(data, axis=1))


# -- pools: padded cells never win, and are not counted ----------------------------------------
def _pool_loops(x: np.ndarray, k: tuple, s: tuple, kind: str) -> np.ndarray:
    """SAME pooling by loops over the cells inside the input (TF's geometry)."""
    n, h, w, c = x.shape
    geometry = []
    for size, kernel, stride in ((h, k[0], s[0]), (w, k[1], s[1])):
        out = -(-size // stride)
        geometry.append((out, max((out - 1) * stride + kernel - size, 0) // 2))
    (oh, top), (ow, left) = geometry
    y = np.empty((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            r, q = i * s[0] - top, j * s[1] - left
            window = x[:, max(r, 0) : r + k[0], max(q, 0) : q + k[1], :]
            y[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return y


@pytest.mark.parametrize("channels", [3, 32])
def test_max_pool_same_padding_of_negative_inputs(channels: int) -> None:
    # All inputs < 0: a kernel that let a padded 0 into the max would return 0 at the borders.
    data = -1.0 - np.random.default_rng(0).random((2, 5, 6, channels))
    x = gf.placeholder(gf.float64, [None, None, None, channels])
    fetches = [gf.nn.max_pool2d(x, 3, 2, "SAME"), gf.nn.avg_pool2d(x, [2, 3], [2, 2], "SAME")]
    got_max, got_avg = run_compiled(fetches, {x: data})
    assert (got_max < 0).all()
    np.testing.assert_array_equal(got_max, _pool_loops(data, (3, 3), (2, 2), "max"))
    np.testing.assert_allclose(got_avg, _pool_loops(data, (2, 3), (2, 2), "avg"), rtol=1e-12)


# -- conv2d ------------------------------------------------------------------------------------
def _conv_loops(x, f, strides, dilations, padding) -> np.ndarray:
    """Conv2D by loops over output pixels and taps; SAME padding as TF (smaller half before).

    A tap in the padding adds 0 @ f[a, b], as the reference's zero-padded copy does.
    """
    n, h, w, cin = x.shape
    kh, kw, _, cout = f.shape
    geometry = []
    for size, kernel, stride, dilation in (
        (h, kh, strides[0], dilations[0]),
        (w, kw, strides[1], dilations[1]),
    ):
        reach = (kernel - 1) * dilation + 1
        if padding == "SAME":
            out = -(-size // stride)
            geometry.append((out, max((out - 1) * stride + reach - size, 0) // 2))
        else:
            geometry.append(((size - reach) // stride + 1, 0))
    (oh, top), (ow, left) = geometry
    y = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r = i * strides[0] - top + a * dilations[0]
                    c = j * strides[1] - left + b * dilations[1]
                    inside = 0 <= r < h and 0 <= c < w
                    y[:, i, j, :] += (x[:, r, c, :] if inside else np.zeros((n, cin))) @ f[a, b]
    return y


@pytest.mark.parametrize("known", [True, False], ids=["static", "dynamic"])
@pytest.mark.parametrize(
    ("image", "kernel", "cout", "strides", "dilations", "padding"),
    [
        ((2, 9, 7, 3), (3, 2), 5, (2, 1), (1, 2), "SAME"),
        ((1, 8, 8, 4), (3, 3), 33, (1, 1), (2, 2), "SAME"),  # 33: a tile of 32 and one of 1
        ((1, 6, 13, 3), (3, 3), 12, (1, 1), (1, 1), "SAME"),  # a block of 8 pixels and 5 more
        ((1, 10, 9, 2), (2, 3), 16, (3, 2), (2, 1), "VALID"),
        ((1, 4, 5, 2), (4, 4), 8, (3, 3), (1, 1), "SAME"),  # the window overhangs both sides
    ],
)
def test_conv2d_strides_dilations_padding(
    image, kernel, cout, strides, dilations, padding, known: bool
) -> None:
    rng = np.random.default_rng(1)
    data = rng.standard_normal(image)
    weights = rng.standard_normal((*kernel, image[3], cout))
    weights[0, 0, 0, 0] = np.inf  # NaN where tap (0, 0) falls in the padding: 0 * inf
    # Static: output channels in registers. Dynamic: SAME padding from run-time sizes.
    x = gf.placeholder(gf.float64, [None, *image[1:]] if known else [None] * 4)
    f = gf.placeholder(gf.float64, weights.shape if known else [None] * 4)
    y = gf.nn.conv2d(x, f, strides=list(strides), padding=padding, dilations=list(dilations))
    got = run_compiled(y, {x: data, f: weights})
    with np.errstate(invalid="ignore"):  # 0 * inf
        want = _conv_loops(data, weights, strides, dilations, padding)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# -- softmax and log-softmax as single ops (O1 does not expand them) ---------------------------
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_ops_at_o1(axis: int) -> None:
    data = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32) * 30
    data[0, 0, 0] = np.inf  # this row is NaN, as in the reference
    x = gf.placeholder(gf.float32, [None, 4, 5])
    fetches = [gf.nn.softmax(x, axis=axis), gf.nn.log_softmax(x, axis=axis)]
    got = run_compiled(fetches, {x: data}, level="O1")
    with gf.Session(mode="interpreted") as sess:
        want = sess.run(fetches, {x: data})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(got[0][0, :, 0] if axis == 1 else got[0][0, 0, :]).all()


# -- a small CNN: one executable ---------------------------------------------------------------
def test_small_cnn_compiles_to_one_executable() -> None:
    rng = np.random.default_rng(3)
    images = gf.placeholder(gf.float32, [None, 12, 12, 1])
    labels = gf.placeholder(gf.int64, [None])
    conv_w = gf.constant(rng.standard_normal((3, 3, 1, 8)).astype(np.float32) * 0.3)
    dense_w = gf.constant(rng.standard_normal((6 * 6 * 8, 10)).astype(np.float32) * 0.1)
    hidden = gf.nn.relu(gf.nn.conv2d(images, conv_w, strides=1, padding="SAME"))
    pooled = gf.nn.max_pool(hidden, ksize=2, strides=2, padding="SAME")
    logits = gf.matmul(gf.reshape(pooled, [-1, 6 * 6 * 8]), dense_w)
    losses = gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    loss = gf.reduce_mean(losses)
    feed = {
        images: rng.standard_normal((4, 12, 12, 1)).astype(np.float32),
        labels: np.array([0, 3, 9, 5]),
    }
    got = run_compiled([logits, loss], feed)
    with gf.Session(mode="interpreted") as sess:
        want = sess.run([logits, loss], feed)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
