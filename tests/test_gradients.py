"""gf.gradients: every differentiable op against finite differences, and TF1's semantics.

The table family (GRAD_CASES of tests/cases_grad.py) compares the symbolic
gradient of sum(w * f(x)) for random weights w (passed as grad_ys) with
central finite differences in float64, with static and with all-None
placeholder shapes. The other tests check what TF1 promises around it:
None for unrelated xs, grad_ys, stop_gradients, errors for integer tensors,
name scopes, and that the compiled session agrees with the interpreter.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from cases_grad import GRAD_CASES, GradCase
from optable import default_input

import graphflow as gf
from graphflow import errors
from graphflow.ops.registry import registered_ops

SEED = 0

# Differentiable op types that no GRAD_CASE builds, and where they are checked instead.
COVERED_ELSEWHERE = {
    "Fused": "made by the compiler's fusion pass; never in a graph that gf.gradients sees",
    "VariableV2": "test_gradient_with_respect_to_a_variable",
}


def _inputs(case: GradCase) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    gens = list(case.gen) if case.gen is not None else [None] * len(case.shapes)
    return [
        np.array((g or default_input)(rng, tuple(shape), np.dtype(dtype)))
        for g, shape, dtype in zip(gens, case.shapes, case.input_dtypes)
    ]


def _build(case: GradCase, none_dims: bool) -> tuple[gf.Graph, list[gf.Tensor], list[gf.Tensor]]:
    graph = gf.Graph()
    with graph.as_default():
        placeholders = [
            gf.placeholder(dtype, shape=[None] * len(shape) if none_dims else shape, name=f"in{i}")
            for i, (shape, dtype) in enumerate(zip(case.shapes, case.input_dtypes))
        ]
        built = case.build(*placeholders)
    ys = list(built) if isinstance(built, list | tuple) else [built]
    return graph, placeholders, ys


def _float_inputs(case: GradCase) -> list[int]:
    return [i for i, d in enumerate(case.input_dtypes) if np.dtype(d).kind == "f"]


@functools.cache
def _reference(case_id: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(inputs, weights, finite-difference gradients) of a case, computed once."""
    case = next(c for c in GRAD_CASES if c.id == case_id)
    arrays = _inputs(case)
    graph, placeholders, ys = _build(case, none_dims=False)
    with graph.as_default():
        init = gf.global_variables_initializer()
    with gf.Session(graph=graph, mode="interpreted") as sess:
        sess.run(init)
        outputs = sess.run(ys, feed_dict=dict(zip(placeholders, arrays)))
        rng = np.random.default_rng(SEED + 1)
        weights = [rng.uniform(0.5, 1.5, size=np.shape(o)) for o in outputs]

        def objective(values: list[np.ndarray]) -> float:
            got = sess.run(ys, feed_dict=dict(zip(placeholders, values)))
            return float(sum(np.sum(w * g) for w, g in zip(weights, got)))

        fd = []
        for i in _float_inputs(case):
            grad = np.zeros(arrays[i].shape)
            for index in np.ndindex(arrays[i].shape):
                values = [np.array(a) for a in arrays]
                values[i][index] += case.eps
                up = objective(values)
                values[i][index] -= 2 * case.eps
                down = objective(values)
                grad[index] = (up - down) / (2 * case.eps)
            fd.append(grad)
    return arrays, weights, fd


def _symbolic(
    case: GradCase, none_dims: bool, mode: str = "interpreted"
) -> list[np.ndarray | None]:
    arrays, weights, _ = _reference(case.id)
    graph, placeholders, ys = _build(case, none_dims)
    xs = [placeholders[i] for i in _float_inputs(case)]
    with graph.as_default():
        grad_ys = [gf.constant(w.astype(y.dtype.np)) for w, y in zip(weights, ys)]
        grads = gf.gradients(ys, xs, grad_ys=grad_ys)
        init = gf.global_variables_initializer()
    for x, g in zip(xs, grads):
        if g is not None:
            assert g.dtype == x.dtype, f"{case.id}: gradient dtype {g.dtype} for {x.dtype}"
            assert g.shape.is_compatible_with(x.shape), f"{case.id}: static shape {g.shape}"
    fetch = [g for g in grads if g is not None]
    with gf.Session(graph=graph, mode=mode) as sess:
        sess.run(init)
        values = iter(sess.run(fetch, feed_dict=dict(zip(placeholders, arrays))))
    return [None if g is None else next(values) for g in grads]


_PARAMS = [
    pytest.param(case, variant, id=f"{case.id}-{variant}")
    for case in GRAD_CASES
    for variant in (("static", "none") if case.none_dims else ("static",))
]


@pytest.mark.parametrize(("case", "variant"), _PARAMS)
def test_gradient_matches_finite_differences(case: GradCase, variant: str) -> None:
    arrays, _, fd = _reference(case.id)
    got = _symbolic(case, none_dims=variant == "none")
    for i, g, want in zip(_float_inputs(case), got, fd):
        if g is None:
            # No symbolic gradient: the function does not depend on this input.
            np.testing.assert_allclose(want, 0.0, atol=case.atol, err_msg=f"{case.id} input {i}")
            continue
        assert g.shape == arrays[i].shape, f"{case.id} input {i}: shape {g.shape}"
        np.testing.assert_allclose(
            g, want, rtol=case.rtol, atol=case.atol, err_msg=f"{case.id} [{variant}] input {i}"
        )


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in GRAD_CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_differentiable_op_has_a_rule_and_a_case() -> None:
    covered: set[str] = set()
    for case in GRAD_CASES:
        graph, _, _ = _build(case, none_dims=False)
        covered |= {op.type for op in graph.get_operations()}
    for name, op_def in sorted(registered_ops().items()):
        if not op_def.differentiable or name == "Fused":
            continue
        assert op_def.gradient is not None, f"differentiable op {name} has no gradient rule"
        assert name in covered or name in COVERED_ELSEWHERE, f"no gradient case builds {name}"


# -- TF1 semantics ---------------------------------------------------------------------------
def _run(fetches, feeds=None, mode="interpreted"):
    with gf.Session(mode=mode) as sess:
        sess.run(gf.global_variables_initializer())
        return sess.run(fetches, feed_dict=feeds)


def test_gradient_with_respect_to_a_variable() -> None:
    w = gf.Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), name="w")
    x = gf.placeholder(gf.float64, [None, 2], name="x")
    loss = gf.reduce_sum(gf.square(gf.matmul(x, w)))
    (gw,) = gf.gradients(loss, [w])
    data = np.array([[1.0, -1.0], [0.5, 2.0], [3.0, 0.0]])
    want = 2 * data.T @ (data @ np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(_run(gw, {x: data}), want, rtol=1e-12)


def test_unrelated_and_blocked_xs_give_none() -> None:
    x = gf.placeholder(gf.float64, [3], name="x")
    z = gf.placeholder(gf.float64, [3], name="z")
    y = gf.reduce_sum(x * 2.0)
    through_argmax = gf.cast(gf.argmax(z), gf.float64) + gf.reduce_sum(x)
    through_int_cast = gf.cast(gf.cast(z, gf.int32), gf.float64) * x
    through_comparison = gf.where(z > 0.0, x, x * 2.0)
    assert gf.gradients(y, [x, z])[1] is None
    assert gf.gradients(through_argmax, [z]) == [None]
    assert gf.gradients(through_int_cast, [z]) == [None]
    assert gf.gradients(through_comparison, [z]) == [None]
    (gx,) = gf.gradients(y, x)
    np.testing.assert_array_equal(_run(gx, {x: [1.0, 2.0, 3.0]}), [2.0, 2.0, 2.0])


def test_gradients_sum_over_ys_and_use_grad_ys() -> None:
    x = gf.placeholder(gf.float64, [2], name="x")
    y1, y2 = x * 3.0, gf.square(x)
    (default,) = gf.gradients([y1, y2], [x])
    (weighted,) = gf.gradients([y1, y2], [x], grad_ys=[np.array([1.0, 10.0]), None])
    feeds = {x: np.array([1.0, 2.0])}
    np.testing.assert_allclose(_run(default, feeds), [3 + 2, 3 + 4])
    np.testing.assert_allclose(_run(weighted, feeds), [3 + 2, 30 + 4])
    with pytest.raises(errors.InvalidArgumentError, match="one entry per y"):
        gf.gradients([y1, y2], [x], grad_ys=[np.ones(2)])
    with pytest.raises(errors.InvalidArgumentError, match="another dtype"):
        gf.gradients(y1, [x], grad_ys=gf.constant(np.ones(2, np.float32)))


def test_stop_gradients_and_the_stop_gradient_op() -> None:
    # TF's documented example: a and b are treated as constants, each still gets its gradient.
    a = gf.placeholder(gf.float64, [], name="a")
    b = 2.0 * a
    ga, gb = gf.gradients(a + b, [a, b], stop_gradients=[a, b])
    np.testing.assert_allclose(_run([ga, gb], {a: 0.0}), [1.0, 1.0])
    ga_free, _ = gf.gradients(a + b, [a, b])
    assert _run(ga_free, {a: 0.0}) == pytest.approx(3.0)
    # The op: gradients do not flow through it.
    x = gf.placeholder(gf.float64, [2], name="x")
    (gx,) = gf.gradients(gf.stop_gradient(x * 3.0) * x, [x])
    np.testing.assert_allclose(_run(gx, {x: np.array([1.0, 2.0])}), [3.0, 6.0])
    # TF1's softmax_cross_entropy_with_logits stops the labels' gradient; _v2 does not.
    labels = gf.placeholder(gf.float64, [2, 3], name="labels")
    logits = gf.placeholder(gf.float64, [2, 3], name="logits")
    v1 = gf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    v2 = gf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    assert gf.gradients(v1, [labels]) == [None]
    assert gf.gradients(v2, [labels])[0] is not None


def test_integer_tensors_raise_naming_the_op_and_the_line() -> None:
    n = gf.placeholder(gf.int32, [3], name="counts")
    line = __import__("inspect").currentframe().f_lineno - 1
    y = gf.cast(n, gf.float64) * 2.0
    with pytest.raises(errors.InvalidArgumentError) as info:
        gf.gradients(y, [n])
    message = str(info.value)
    assert "Placeholder op 'counts'" in message
    assert f"test_gradients.py:{line}" in message
    assert "int32" in message and "expected a float32 or float64 tensor" in message
    total = gf.reduce_sum(n, name="int_total")
    line = __import__("inspect").currentframe().f_lineno - 1
    x = gf.placeholder(gf.float64, [3], name="x")
    with pytest.raises(errors.InvalidArgumentError) as info:
        gf.gradients(total, [x])
    assert "Sum op 'int_total'" in str(info.value)
    assert f"test_gradients.py:{line}" in str(info.value)


def test_backward_ops_live_in_the_gradients_name_scope() -> None:
    x = gf.placeholder(gf.float64, [2], name="x")
    before = {op.name for op in gf.get_default_graph().get_operations()}
    y = gf.reduce_sum(gf.exp(x), name="total")
    (gx,) = gf.gradients(y, [x])
    new = [op for op in gf.get_default_graph().get_operations() if op.name not in before]
    backward = [op for op in new if op.name not in ("Exp", "total")]
    assert backward and all(op.name.startswith("gradients/") for op in backward)
    assert gx.name.startswith("gradients/Exp_grad/")


def test_none_batch_dims_at_two_batch_sizes() -> None:
    x = gf.placeholder(gf.float64, [None, 3], name="x")
    target = gf.placeholder(gf.float64, [None, 1], name="target")
    w = gf.Variable(np.array([[0.5], [-1.0], [2.0]]), name="w")
    b = gf.Variable(np.array([0.1]), name="b")
    pred = gf.matmul(x, w) + b
    loss = gf.reduce_mean(gf.square(pred - target))
    gw, gb, gx = gf.gradients(loss, [w, b, x])
    rng = np.random.default_rng(3)
    for batch in (2, 5):
        data, t = rng.standard_normal((batch, 3)), rng.standard_normal((batch, 1))
        residual = data @ np.array([[0.5], [-1.0], [2.0]]) + 0.1 - t
        got = _run([gw, gb, gx], {x: data, target: t})
        np.testing.assert_allclose(got[0], 2 * data.T @ residual / batch, rtol=1e-12)
        np.testing.assert_allclose(got[1], [2 * residual.sum() / batch], rtol=1e-12)
        np.testing.assert_allclose(got[2], 2 * residual * [[0.5, -1.0, 2.0]] / batch, rtol=1e-12)


def test_broadcast_of_a_none_dim_is_resolved_at_run_time() -> None:
    # Both [None, 2]: a may be fed with one row and broadcast against b's rows.
    a = gf.placeholder(gf.float64, [None, 2], name="a")
    b = gf.placeholder(gf.float64, [None, 2], name="b")
    ga, gb = gf.gradients(gf.reduce_sum(a * b), [a, b])
    rows = np.arange(6.0).reshape(3, 2)
    for mode in ("interpreted", "compiled"):
        got_a, got_b = _run([ga, gb], {a: [[1.0, 2.0]], b: rows}, mode=mode)
        np.testing.assert_allclose(got_a, rows.sum(axis=0, keepdims=True))
        np.testing.assert_allclose(got_b, np.tile([[1.0, 2.0]], (3, 1)))


# -- compiled sessions run the backward graph ---------------------------------------------------
def _compare_modes(fetches, feeds, expect_compiled: bool) -> None:
    with gf.Session(mode="interpreted") as sess:
        sess.run(gf.global_variables_initializer())
        want = sess.run(fetches, feed_dict=feeds)
    with gf.Session(mode="compiled") as sess:
        sess.run(gf.global_variables_initializer())
        got = sess.run(fetches, feed_dict=feeds)
        fallbacks = sess.cache_info().fallbacks
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    if expect_compiled:
        assert not fallbacks, fallbacks


def test_mlp_backward_graph_compiles_and_matches_the_interpreter() -> None:
    rng = np.random.default_rng(0)
    x = gf.placeholder(gf.float32, [None, 6], name="x")
    labels = gf.placeholder(gf.int32, [None], name="labels")
    w1 = gf.Variable(rng.standard_normal((6, 8)).astype(np.float32), name="w1")
    b1 = gf.Variable(np.zeros(8, np.float32), name="b1")
    w2 = gf.Variable(rng.standard_normal((8, 3)).astype(np.float32), name="w2")
    hidden = gf.nn.relu(gf.matmul(x, w1) + b1)
    logits = gf.nn.bias_add(gf.matmul(hidden, w2), gf.zeros([3]))
    xent = gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    loss = gf.reduce_mean(xent) + 1e-3 * gf.reduce_sum(gf.square(w1))
    grads = gf.gradients(loss, [w1, b1, w2])
    feeds = {
        x: rng.standard_normal((5, 6)).astype(np.float32),
        labels: rng.integers(0, 3, 5).astype(np.int32),
    }
    _compare_modes(grads, feeds, expect_compiled=True)


def test_conv_pool_net_backward_matches_in_compiled_sessions() -> None:
    rng = np.random.default_rng(1)
    images = gf.placeholder(gf.float32, [None, 6, 6, 1], name="images")
    f = gf.Variable(rng.standard_normal((3, 3, 1, 2)).astype(np.float32), name="f")
    conv = gf.nn.relu(gf.nn.conv2d(images, f, 1, "SAME"))
    pooled = gf.nn.avg_pool2d(gf.nn.max_pool2d(conv, 2, 2, "VALID"), 3, 3, "VALID")
    loss = gf.reduce_sum(gf.square(pooled))
    (gf_,) = gf.gradients(loss, [f])
    feeds = {images: rng.standard_normal((2, 6, 6, 1)).astype(np.float32)}
    _compare_modes([gf_], feeds, expect_compiled=False)
