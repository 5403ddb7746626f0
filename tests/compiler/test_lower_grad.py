"""The backward ops' lowering (compiler/lowering/structured_grad.py).

The op tables (tests/cases_grad.py) check values in compiled mode too, but a
compiled Session silently runs the interpreter for an op without lowering.
These tests check what the tables cannot see: that every backward op
compiles (no fallback, one executable for every batch size fed), that the
op survives the optimizer so its kernel is what ran, batch sizes 0 and 1,
the first-max and NaN rules of MaxPoolGrad, the bit-exact scatter order of
the pool gradients and GatherV2Grad, checked errors, and a CNN training step
that compiles and matches the interpreter step by step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

import graphflow as gf
from graphflow.compiler.lowering.module import compiled_op_types
from graphflow.compiler.pipeline import optimize
from graphflow.ops.gradients_math import op_output
from graphflow.ops.gradients_nn import _avg_pool_grad, _max_pool_grad, _max_pool_grad_grad

GRAD_OPS = (
    "SumToShapeOf",
    "ReshapeToShapeOf",
    "StridedSliceGrad",
    "GatherV2Grad",
    "MirrorPadGrad",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "MaxPoolGrad",
    "MaxPoolGradGrad",
    "AvgPoolGrad",
)


def test_every_backward_op_has_a_lowering() -> None:
    assert set(GRAD_OPS) <= compiled_op_types()


# -- every op: compiled, no fallback, batch dims read at run time -----------------------------
@dataclasses.dataclass
class Batched:
    """An op built from placeholders whose dim 0 is None, fed with `batch` rows."""

    id: str
    op_type: str
    build: Callable[..., gf.Tensor]
    shapes: list[tuple[int | None, ...]]  # None: the batch dim
    dtypes: list[str]
    ints: dict[int, int] = dataclasses.field(default_factory=dict)  # input -> int bound


def _conv(strides, dilations, padding, explicit=()):
    return {
        "strides": strides,
        "dilations": dilations,
        "padding": padding,
        "explicit_paddings": explicit,
    }


def _pool(k, s, padding):
    return {"ksize": (k, k), "strides": (s, s), "padding": padding}


def _out(size: int, k: int, s: int, d: int, padding: str) -> int:
    eff = (k - 1) * d + 1
    return -(-size // s) if padding == "SAME" else (size - eff) // s + 1


def _conv_batched(kind: str, dtype: str, strides, dilations, padding, channels=(3, 5)) -> Batched:
    ci, co = channels
    h, w, k = 7, 6, 3
    oh = _out(h, k, strides[0], dilations[0], padding)
    ow = _out(w, k, strides[1], dilations[1], padding)
    attrs = _conv(strides, dilations, padding)
    return Batched(
        f"{kind}/{dtype}/{padding}/s{strides}/d{dilations}/c{channels}",
        kind,
        lambda x, f, g: op_output(kind, [x, f, g], attrs),
        [(None, h, w, ci), (k, k, ci, co), (None, oh, ow, co)],
        [dtype] * 3,
    )


def _pool_batched(kind: str, dtype: str, k: int, s: int, padding: str) -> Batched:
    h, w, c = 7, 5, 3
    pooled = (None, _out(h, k, s, 1, padding), _out(w, k, s, 1, padding), c)
    attrs = _pool(k, s, padding)
    ident = f"{kind}/{dtype}/{padding}/k{k}s{s}"
    if kind == "AvgPoolGrad":
        return Batched(
            ident,
            kind,
            lambda x, g: op_output(kind, [x, g], attrs),
            [(None, h, w, c), pooled],
            [dtype] * 2,
        )
    gg = (None, h, w, c) if kind == "MaxPoolGradGrad" else pooled
    return Batched(
        ident,
        kind,
        lambda x, y, g: op_output(kind, [x, y, g], attrs),
        [(None, h, w, c), pooled, gg],
        [dtype] * 3,
    )


BATCHED = [
    Batched(
        "SumToShapeOf/bias",
        "SumToShapeOf",
        lambda x, like: op_output("SumToShapeOf", [x, like]),
        [(None, 3, 4), (3, 1)],
        ["float32", "float32"],
    ),
    Batched(
        "SumToShapeOf/to-batch",
        "SumToShapeOf",
        lambda x, like: op_output("SumToShapeOf", [x, like]),
        [(2, None, 5), (None, 1)],
        ["int32", "int32"],
    ),
    Batched(
        "ReshapeToShapeOf",
        "ReshapeToShapeOf",
        lambda x, like: op_output("ReshapeToShapeOf", [x, like]),
        [(None, 6), (None, 2, 3)],
        ["float64", "float32"],
    ),
    Batched(
        "StridedSliceGrad",
        "StridedSliceGrad",
        lambda g, like: op_output(
            "StridedSliceGrad",
            [g, like],
            {"spec": (("slice", None, None, -1), ("newaxis",), ("slice", 3, 0, -2), ("int", -2))},
        ),
        [(None, 1, 1), (None, 4, 5)],  # g broadcast along the sliced axis
        ["float32", "float32"],
    ),
    Batched(
        "GatherV2Grad",
        "GatherV2Grad",
        lambda g, i, like: op_output("GatherV2Grad", [g, i, like], {"axis": 1}),
        [(None, 5, 3), (5,), (None, 4, 3)],
        ["float64", "int64", "float64"],
        ints={1: 4},
    ),
    Batched(
        "MirrorPadGrad/SYMMETRIC",
        "MirrorPadGrad",
        lambda g: op_output(
            "MirrorPadGrad",
            [g],
            {"paddings": ((0, 0), (2, 1), (1, 3), (0, 0)), "mode": "SYMMETRIC"},
        ),
        [(None, 6, 7, 2)],
        ["int32"],
    ),
    Batched(
        "MirrorPadGrad/REFLECT",
        "MirrorPadGrad",
        lambda g: op_output(
            "MirrorPadGrad", [g], {"paddings": ((0, 0), (2, 2)), "mode": "REFLECT"}
        ),
        [(None, 7)],
        ["float32"],
    ),
    *[
        _conv_batched(kind, dtype, strides, dilations, padding, channels)
        for kind in ("Conv2DBackpropInput", "Conv2DBackpropFilter")
        for dtype, strides, dilations, padding, channels in (
            ("float32", (1, 1), (1, 1), "SAME", (3, 5)),
            ("float64", (2, 1), (1, 2), "SAME", (3, 5)),
            ("float32", (2, 3), (1, 1), "VALID", (20, 70)),  # several vectors and a rest
            ("float64", (1, 2), (2, 1), "VALID", (9, 1)),
        )
    ],
    *[
        _pool_batched(kind, dtype, k, s, padding)
        for kind in ("MaxPoolGrad", "MaxPoolGradGrad", "AvgPoolGrad")
        for dtype, k, s, padding in (
            ("float32", 3, 2, "SAME"),
            ("float64", 2, 1, "VALID"),
            ("float32", 3, 1, "SAME"),
        )
    ],
]


def _feed(case: Batched, batch: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for k, (shape, dtype) in enumerate(zip(case.shapes, case.dtypes)):
        concrete = tuple(batch if d is None else d for d in shape)
        if k in case.ints:
            arrays.append(rng.integers(0, case.ints[k], concrete).astype(dtype))
        elif np.dtype(dtype).kind == "i":
            arrays.append(rng.integers(-5, 6, concrete).astype(dtype))
        else:
            arrays.append(rng.standard_normal(concrete).astype(dtype))
    return arrays


@pytest.mark.parametrize("case", BATCHED, ids=lambda c: c.id)
def test_op_compiles_for_every_batch_size(case: Batched) -> None:
    graph = gf.Graph()
    with graph.as_default():
        inputs = [
            gf.placeholder(d, list(s), name=f"in{k}")
            for k, (s, d) in enumerate(zip(case.shapes, case.dtypes))
        ]
        out = case.build(*inputs)
        program = optimize([out], feeds=inputs).program
        assert case.op_type in {op.type for op in program.graph.get_operations()}
    with (
        gf.Session(graph=graph, mode="compiled") as compiled,
        gf.Session(graph=graph, mode="interpreted") as interpreted,
    ):
        for seed, batch in enumerate((3, 5, 0, 1)):
            feed = dict(zip(inputs, _feed(case, batch, seed)))
            got = compiled.run(out, feed)
            want = interpreted.run(out, feed)
            assert got.shape == want.shape and got.dtype == want.dtype
            if got.dtype.kind == "f":
                rtol = 1e-5 if got.dtype == np.float32 else 1e-12
                np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
            else:
                np.testing.assert_array_equal(got, want)
        info = compiled.cache_info()
        assert info.fallbacks == ()
        assert info.compiled == 1  # new batch sizes re-plan, never recompile


# -- max pool: first max, NaN, a padded tap winning; scatter order ------------------------------
def _run_compiled(fetch, feed):
    with gf.Session(mode="compiled") as sess:
        got = sess.run(fetch, feed)
        assert sess.cache_info().fallbacks == ()
    return got


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_pool_grad_ties_nan_and_padding_are_the_reference_bit_for_bit(dtype: str) -> None:
    nan, inf = np.nan, np.inf
    rows = [
        [1.0, 3.0, 3.0, -0.0, 0.0],  # ties: the first max wins; -0 == 0 is a tie
        [nan, 2.0, nan, 9.0, 1.0],  # the first NaN wins over a later larger value
        [-inf, -inf, -inf, -inf, -inf],  # all -inf: a padded tap (also -inf) comes first
        [2.0, nan, 2.0, 2.0, inf],
        [-inf, 5.0, -inf, -inf, 0.5],
    ]
    data = np.stack([np.array(rows), np.array(rows).T[::-1]], axis=-1)[None].astype(dtype)
    data = np.concatenate([data, -data], axis=0)  # (2, 5, 5, 2)
    for k, s, padding in ((3, 1, "SAME"), (2, 2, "SAME"), (3, 2, "VALID"), (1, 1, "VALID")):
        attrs = _pool(k, s, padding)
        x = gf.placeholder(dtype, [None, None, None, 2])
        y = gf.nn.max_pool2d(x, k, s, padding)
        g = gf.placeholder(dtype, [None, None, None, 2])
        gg = gf.placeholder(dtype, [None, None, None, 2])
        dx = op_output("MaxPoolGrad", [x, y, g], attrs)
        dg = op_output("MaxPoolGradGrad", [x, y, gg], attrs)
        pooled = _out(5, k, s, 1, padding)
        rng = np.random.default_rng(k * 10 + s)
        g_value = rng.standard_normal((2, pooled, pooled, 2)).astype(dtype)
        gg_value = rng.standard_normal(data.shape).astype(dtype)
        gg_value[0, 0, 0, 0] = -0.0
        got_dx, got_dg = _run_compiled([dx, dg], {x: data, g: g_value, gg: gg_value})
        with np.errstate(invalid="ignore"):
            want_dx = _max_pool_grad(data, None, g_value, **attrs)
            want_dg = _max_pool_grad_grad(data, None, gg_value, **attrs)
        label = f"k={k} s={s} {padding}"
        np.testing.assert_array_equal(got_dx, want_dx, err_msg=label)
        np.testing.assert_array_equal(np.signbit(got_dg), np.signbit(want_dg), err_msg=label)
        np.testing.assert_array_equal(got_dg, want_dg, err_msg=label)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_avg_pool_grad_adds_shares_in_the_reference_order(padding: str) -> None:
    # Overlapping windows (stride 1): up to 9 shares per cell, float32: any other order
    # of the additions would round differently somewhere.
    rng = np.random.default_rng(1)
    data = rng.standard_normal((3, 9, 8, 5)).astype(np.float32) * 1e3
    attrs = _pool(3, 1, padding)
    x = gf.placeholder(gf.float32, [None, 9, 8, 5])
    pooled = gf.nn.avg_pool2d(x, 3, 1, padding)
    g_value = rng.standard_normal((3, *pooled.shape.as_list()[1:])).astype(np.float32) * 1e3
    g = gf.placeholder(gf.float32, [None, *pooled.shape.as_list()[1:]])
    got = _run_compiled(op_output("AvgPoolGrad", [x, g], attrs), {x: data, g: g_value})
    np.testing.assert_array_equal(got, _avg_pool_grad(data, g_value, **attrs))


def test_gather_grad_adds_repeated_indices_in_order_and_checks_them() -> None:
    rng = np.random.default_rng(2)
    g_value = (rng.standard_normal((64, 3)) * 10.0 ** rng.integers(-6, 7, (64, 1))).astype(
        np.float32
    )
    index_value = rng.integers(0, 4, 64).astype(np.int32)
    g = gf.placeholder(gf.float32, [None, 3])
    indices = gf.placeholder(gf.int32, [None])
    like = gf.placeholder(gf.float32, [4, 3])
    out = op_output("GatherV2Grad", [g, indices, like], {"axis": 0})
    feed = {g: g_value, indices: index_value, like: np.zeros((4, 3), np.float32)}
    want = np.zeros((4, 3), np.float32)
    np.add.at(want, index_value, g_value)
    with gf.Session(mode="compiled") as sess:
        np.testing.assert_array_equal(sess.run(out, feed), want)
        feed[indices] = index_value.copy()
        feed[indices][[5, 9]] = [4, -1]
        with pytest.raises(gf.errors.InvalidArgumentError) as e:
            sess.run(out, feed)
        assert sess.cache_info().fallbacks == ()
    assert "indices.flat[5]" in str(e.value) and "got 4" in str(e.value)


# -- checked shapes ------------------------------------------------------------------------------
def test_run_time_shape_errors_are_caught() -> None:
    x = gf.placeholder(gf.float32, [None, None])
    like = gf.placeholder(gf.float32, [None, None])
    reshaped = op_output("ReshapeToShapeOf", [x, like])
    summed = op_output("SumToShapeOf", [x, like])
    sliced = op_output("StridedSliceGrad", [x, like], {"spec": (("int", 2),)})
    ones = np.ones((2, 3), np.float32)
    with gf.Session(mode="compiled") as sess:
        np.testing.assert_array_equal(sess.run(reshaped, {x: ones, like: np.ones((3, 2))}), 1)
        np.testing.assert_array_equal(sess.run(summed, {x: ones, like: np.ones((1, 3))}), 2)
        np.testing.assert_array_equal(
            sess.run(sliced, {x: np.ones((1, 4)), like: np.ones((3, 4))}), [[0] * 4] * 2 + [[1] * 4]
        )
        for fetch, feed in (
            (reshaped, {x: ones, like: np.ones((4, 2))}),
            (summed, {x: ones, like: np.ones((2, 2))}),
            (sliced, {x: np.ones((1, 4)), like: np.ones((2, 4))}),  # index 2 of 2 rows
            (sliced, {x: np.ones((1, 3)), like: np.ones((3, 4))}),  # 3 into 4 columns
        ):
            with pytest.raises(gf.errors.InvalidArgumentError):
                sess.run(fetch, feed)
        assert sess.cache_info().fallbacks == ()


def test_conv_backprop_rejects_a_gradient_of_the_wrong_shape() -> None:
    x = gf.placeholder(gf.float32, [None, 6, 6, 2])
    f = gf.placeholder(gf.float32, [3, 3, 2, 4])
    g = gf.placeholder(gf.float32, [None, None, None, 4])
    attrs = _conv((1, 1), (1, 1), "SAME")
    fetches = [op_output(kind, [x, f, g], attrs) for kind in GRAD_OPS[5:7]]
    feed = {x: np.ones((2, 6, 6, 2)), f: np.ones((3, 3, 2, 4)), g: np.ones((2, 5, 6, 4))}
    for fetch in fetches:
        with gf.Session(mode="compiled") as sess:
            with pytest.raises(gf.errors.InvalidArgumentError) as e:
                sess.run(fetch, feed)
            assert sess.cache_info().fallbacks == ()
        assert "got 5 for dim 1" in str(e.value) and "expected 6" in str(e.value)


def test_conv_backprop_with_a_filter_of_unknown_shape() -> None:
    # The general kernels: no transposed filter in the workspace, no register tile.
    rng = np.random.default_rng(3)
    x = gf.placeholder(gf.float64, [None, 5, 6, None])
    f = gf.placeholder(gf.float64, [None, None, None, None])
    g = gf.placeholder(gf.float64, [None, None, None, None])
    attrs = _conv((2, 1), (1, 2), "SAME")
    fetches = [op_output(kind, [x, f, g], attrs) for kind in GRAD_OPS[5:7]]
    feed = {
        x: rng.standard_normal((2, 5, 6, 3)),
        f: rng.standard_normal((2, 3, 3, 4)),
        g: rng.standard_normal((2, 3, 6, 4)),
    }
    with gf.Session(mode="interpreted") as sess:
        want = sess.run(fetches, feed)
    got = _run_compiled(fetches, feed)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# -- a small CNN trains compiled as it does interpreted ---------------------------------------
def _cnn_step(rng: np.random.Generator):
    x = gf.placeholder(gf.float32, [None, 8, 8, 1], name="images")
    labels = gf.placeholder(gf.int64, [None], name="labels")
    f1 = gf.Variable((rng.standard_normal((3, 3, 1, 8)) * 0.3).astype(np.float32), name="f1")
    b1 = gf.Variable(np.zeros(8, np.float32), name="b1")
    f2 = gf.Variable((rng.standard_normal((3, 3, 8, 16)) * 0.2).astype(np.float32), name="f2")
    w = gf.Variable((rng.standard_normal((4 * 4 * 16, 10)) * 0.05).astype(np.float32), name="w")
    b2 = gf.Variable(np.zeros(10, np.float32), name="b2")
    hidden = gf.nn.relu(gf.nn.bias_add(gf.nn.conv2d(x, f1, 1, "SAME"), b1))
    hidden = gf.nn.relu(gf.nn.conv2d(hidden, f2, 1, "SAME"))
    pooled = gf.nn.max_pool2d(hidden, 2, 2, "SAME")
    logits = gf.matmul(gf.reshape(pooled, [-1, 4 * 4 * 16]), w) + b2
    loss = gf.reduce_mean(
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    params = [f1, b1, f2, w, b2]
    grads = gf.gradients(loss, params)
    updates = [gf.assign_sub(p, 0.1 * gp) for p, gp in zip(params, grads)]
    return x, labels, loss, params, updates


def test_cnn_training_step_compiles_and_matches_the_interpreter() -> None:
    rng = np.random.default_rng(4)
    graph = gf.Graph()
    with graph.as_default():
        x, labels, loss, params, updates = _cnn_step(rng)
        types = {op.type for op in graph.get_operations()}
        init = gf.global_variables_initializer()
    assert {"Conv2DBackpropInput", "Conv2DBackpropFilter", "MaxPoolGrad"} <= types
    images = rng.standard_normal((40, 8, 8, 1)).astype(np.float32)
    classes = rng.integers(0, 10, 40)
    losses = {}
    with (
        gf.Session(graph=graph, mode="compiled") as compiled,
        gf.Session(graph=graph, mode="interpreted") as interpreted,
    ):
        compiled.run(init)
        interpreted.run(init)
        init_fallbacks = len(compiled.cache_info().fallbacks)
        for step, batch in enumerate((16, 16, 7, 16, 1)):
            rows = slice(step * 8, step * 8 + batch)
            feed = {x: images[rows], labels: classes[rows]}
            for name, sess in (("compiled", compiled), ("interpreted", interpreted)):
                losses.setdefault(name, []).append(sess.run([loss, *updates], feed)[0])
            for p, got, want in zip(params, compiled.run(params), interpreted.run(params)):
                np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=p.name)
        assert compiled.cache_info().fallbacks[init_fallbacks:] == ()
    np.testing.assert_allclose(losses["compiled"], losses["interpreted"], rtol=1e-4)
