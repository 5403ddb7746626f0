"""gf.train optimizers: TF1's update rules against NumPy, slots, the global step, errors.

The update-rule tests feed explicit gradients through `apply_gradients`, so
they check the optimizers alone; the `minimize` tests at the end go through
`gf.gradients` as a user's training loop does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors

STEPS = 4
SHAPES = {"w": (3, 4), "b": (4,)}


# -- NumPy re-implementations of TF1's training kernels ------------------------------------
# Each takes (var, grad, slots, t) with t = 1, 2, ... and updates var and slots in place,
# in float32 and in the kernels' order of operations.
def _np_sgd(lr: float) -> Callable[..., None]:
    def step(var: np.ndarray, g: np.ndarray, slots: dict, t: int) -> None:
        var -= np.float32(lr) * g

    return step


def _np_momentum(lr: float, mu: float, nesterov: bool) -> Callable[..., None]:
    lr, mu = np.float32(lr), np.float32(mu)

    def step(var: np.ndarray, g: np.ndarray, slots: dict, t: int) -> None:
        a = slots.setdefault("momentum", np.zeros_like(var))
        a[...] = a * mu + g
        if nesterov:
            var -= g * lr + a * mu * lr
        else:
            var -= a * lr

    return step


def _np_adam(lr: float, b1: float, b2: float, eps: float) -> Callable[..., None]:
    lr, b1, b2, eps = (np.float32(x) for x in (lr, b1, b2, eps))

    def step(var: np.ndarray, g: np.ndarray, slots: dict, t: int) -> None:
        m = slots.setdefault("m", np.zeros_like(var))
        v = slots.setdefault("v", np.zeros_like(var))
        b1p, b2p = b1**t, b2**t
        lr_t = lr * np.sqrt(np.float32(1) - b2p) / (np.float32(1) - b1p)
        m[...] = m + (g - m) * (np.float32(1) - b1)
        v[...] = v + (g * g - v) * (np.float32(1) - b2)
        var -= m * lr_t / (np.sqrt(v) + eps)

    return step


def _np_rmsprop(lr: float, rho: float, mu: float, eps: float, centered: bool) -> Callable:
    lr, rho, mu, eps = (np.float32(x) for x in (lr, rho, mu, eps))

    def step(var: np.ndarray, g: np.ndarray, slots: dict, t: int) -> None:
        ms = slots.setdefault("rms", np.ones_like(var))
        mom = slots.setdefault("momentum", np.zeros_like(var))
        ms[...] = ms + (g * g - ms) * (np.float32(1) - rho)
        if centered:
            mg = slots.setdefault("mg", np.zeros_like(var))
            mg[...] = mg + (g - mg) * (np.float32(1) - rho)
            denominator = ms - mg * mg + eps
        else:
            denominator = ms + eps
        mom[...] = mom * mu + g * lr / np.sqrt(denominator)
        var -= mom

    return step


def _np_adagrad(lr: float, init: float) -> Callable[..., None]:
    lr = np.float32(lr)

    def step(var: np.ndarray, g: np.ndarray, slots: dict, t: int) -> None:
        acc = slots.setdefault("accumulator", np.full_like(var, init))
        acc += g * g
        var -= g * lr / np.sqrt(acc)

    return step


CASES: dict[str, tuple[Callable[[], gf.train.Optimizer], Callable[..., None]]] = {
    "sgd": (lambda: gf.train.GradientDescentOptimizer(0.1), _np_sgd(0.1)),
    "momentum": (lambda: gf.train.MomentumOptimizer(0.05, 0.9), _np_momentum(0.05, 0.9, False)),
    "nesterov": (
        lambda: gf.train.MomentumOptimizer(0.05, 0.8, use_nesterov=True),
        _np_momentum(0.05, 0.8, True),
    ),
    "adam": (lambda: gf.train.AdamOptimizer(0.01), _np_adam(0.01, 0.9, 0.999, 1e-8)),
    "adam_custom": (
        lambda: gf.train.AdamOptimizer(0.2, beta1=0.5, beta2=0.75, epsilon=0.1),
        _np_adam(0.2, 0.5, 0.75, 0.1),
    ),
    "rmsprop": (lambda: gf.train.RMSPropOptimizer(0.01), _np_rmsprop(0.01, 0.9, 0.0, 1e-10, False)),
    "rmsprop_centered_momentum": (
        lambda: gf.train.RMSPropOptimizer(
            0.02, decay=0.8, momentum=0.5, epsilon=1e-3, centered=True
        ),
        _np_rmsprop(0.02, 0.8, 0.5, 1e-3, True),
    ),
    "adagrad": (lambda: gf.train.AdagradOptimizer(0.1), _np_adagrad(0.1, 0.1)),
    "adagrad_init": (
        lambda: gf.train.AdagradOptimizer(0.3, initial_accumulator_value=2.0),
        _np_adagrad(0.3, 2.0),
    ),
}

SLOT_NAMES = {
    "sgd": [],
    "momentum": ["momentum"],
    "nesterov": ["momentum"],
    "adam": ["m", "v"],
    "adam_custom": ["m", "v"],
    "rmsprop": ["momentum", "rms"],
    "rmsprop_centered_momentum": ["mg", "momentum", "rms"],
    "adagrad": ["accumulator"],
    "adagrad_init": ["accumulator"],
}


def _problem(seed: int = 0) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Initial values and a gradient per variable and step (some large, some tiny)."""
    rng = np.random.default_rng(seed)
    initial = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [
        {
            n: (rng.standard_normal(s) * 10.0 ** rng.integers(-2, 2)).astype(np.float32)
            for n, s in SHAPES.items()
        }
        for _ in range(STEPS)
    ]
    return initial, grads


def _build(case: str, initial: dict[str, np.ndarray]) -> dict[str, Any]:
    make_optimizer, _ = CASES[case]
    variables = {n: gf.Variable(v, name=n) for n, v in initial.items()}
    grads = {n: gf.placeholder(gf.float32, SHAPES[n], name="grad_" + n) for n in SHAPES}
    optimizer = make_optimizer()
    step = gf.train.get_or_create_global_step()
    train_op = optimizer.apply_gradients(
        [(grads[n], variables[n]) for n in SHAPES], global_step=step
    )
    return {
        "vars": variables,
        "grads": grads,
        "opt": optimizer,
        "step": step,
        "train_op": train_op,
        "init": gf.global_variables_initializer(),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_rule_matches_numpy(case: str) -> None:
    initial, grads = _problem()
    g = _build(case, initial)
    _, np_step = CASES[case]
    expected = {n: v.copy() for n, v in initial.items()}
    expected_slots: dict[str, dict] = {n: {} for n in SHAPES}
    with gf.Session(mode="interpreted") as sess:
        sess.run(g["init"])
        for t in range(1, STEPS + 1):
            sess.run(g["train_op"], {g["grads"][n]: grads[t - 1][n] for n in SHAPES})
            for n in SHAPES:
                np_step(expected[n], grads[t - 1][n], expected_slots[n], t)
                np.testing.assert_allclose(
                    sess.run(g["vars"][n]), expected[n], rtol=2e-5, atol=1e-6, err_msg=f"{n} t={t}"
                )
        for n in SHAPES:
            for slot_name, value in expected_slots[n].items():
                slot = g["opt"].get_slot(g["vars"][n], slot_name)
                np.testing.assert_allclose(sess.run(slot), value, rtol=2e-5, atol=1e-6)
        assert sess.run(g["step"]) == STEPS
    assert g["opt"].get_slot_names() == SLOT_NAMES[case]
    assert sorted(expected_slots["w"]) == SLOT_NAMES[case]


def test_compiled_steps_match_interpreted_for_every_optimizer() -> None:
    # One graph holding every optimizer, each on its own variables: one compilation.
    initial, grads = _problem(seed=3)
    feeds = {n: gf.placeholder(gf.float32, SHAPES[n], name="g_" + n) for n in SHAPES}
    ops, watched = [], []
    for case, (make_optimizer, _) in sorted(CASES.items()):
        with gf.name_scope(case):
            variables = [gf.Variable(initial[n], name=n) for n in SHAPES]
        optimizer = make_optimizer()
        ops.append(optimizer.apply_gradients(list(zip(feeds.values(), variables))))
        watched += variables
        watched += [optimizer.get_slot(v, s) for v in variables for s in SLOT_NAMES[case]]
    step = gf.train.get_or_create_global_step()
    with gf.control_dependencies(ops):
        train_op = gf.assign_add(step, 1).op
    init = gf.global_variables_initializer()
    results = {}
    for mode in ("interpreted", "compiled"):
        with gf.Session(mode=mode) as sess:
            sess.run(init)
            trace = []
            for t in range(STEPS):
                sess.run(train_op, {feeds[n]: grads[t][n] for n in SHAPES})
                trace.append(sess.run(watched))
            assert sess.run(step) == STEPS
            if mode == "compiled":
                assert sess.cache_info().fallbacks == ()
                assert sess.cache_info().compiled >= 1
            results[mode] = trace
    for t in range(STEPS):
        for v, a, b in zip(watched, results["interpreted"][t], results["compiled"][t]):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7, err_msg=f"{v.name} step {t}")


# -- slots, optimizer variables, the global step -------------------------------------------
def test_slots_are_named_after_their_variable_and_initialized() -> None:
    with gf.name_scope("layer"):
        w = gf.Variable(np.ones((2, 3), np.float32), name="w")
    b = gf.Variable(np.ones(3, np.float64), name="b")
    g_w = gf.constant(np.full((2, 3), 0.5, np.float32))
    g_b = gf.constant(np.full(3, 0.5, np.float64))
    adam = gf.train.AdamOptimizer(0.1)
    with gf.name_scope("user_scope"), gf.control_dependencies([gf.no_op(name="unrelated")]):
        adam.apply_gradients([(g_w, w), (g_b, b)])
    rms = gf.train.RMSPropOptimizer(0.1)
    rms.apply_gradients([(g_w, w)])
    m, v = adam.get_slot(w, "m"), adam.get_slot(w, "v")
    assert (m.op.name, v.op.name) == ("layer/w/Adam", "layer/w/Adam_1")
    assert adam.get_slot(b, "m").dtype == gf.float64
    assert adam.get_slot(w, "accumulator") is None
    assert rms.get_slot(b, "rms") is None
    assert rms.get_slot(w, "rms").op.name == "layer/w/RMSProp"
    names = [x.op.name for x in adam.variables()]
    assert names == [
        "beta1_power",
        "beta2_power",
        "layer/w/Adam",
        "layer/w/Adam_1",
        "b/Adam",
        "b/Adam_1",
    ]
    for slot in adam.variables() + rms.variables():
        assert slot in gf.global_variables()
        assert slot not in gf.trainable_variables()
        assert not slot.initializer.control_inputs
    assert gf.trainable_variables() == [w, b]
    with gf.Session(mode="interpreted") as sess:
        sess.run(gf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(m), np.zeros((2, 3), np.float32))
        np.testing.assert_array_equal(sess.run(rms.get_slot(w, "rms")), np.ones((2, 3)))
        assert sess.run(adam.variables()[0]) == np.float32(0.9)


def test_global_step() -> None:
    assert gf.train.get_global_step() is None
    step = gf.train.get_or_create_global_step()
    assert gf.train.get_or_create_global_step() is step
    assert gf.train.get_global_step() is step
    assert step.op.name == "global_step" and step.dtype == gf.int64 and not step.trainable
    with pytest.raises(errors.InvalidArgumentError, match="already has a global step"):
        gf.train.create_global_step()
    w = gf.Variable([1.0, 2.0], name="w")
    train_op = gf.train.GradientDescentOptimizer(0.5).apply_gradients(
        [(gf.constant([1.0, -1.0]), w)], global_step=step
    )
    assert isinstance(train_op, gf.Operation)
    with gf.Session(mode="interpreted") as sess:
        sess.run(gf.global_variables_initializer())
        for _ in range(3):
            sess.run(train_op)
        assert gf.train.global_step(sess, step) == 3
        np.testing.assert_allclose(sess.run(w), [-0.5, 3.5])
    other = gf.Graph()
    assert gf.train.get_global_step(other) is None
    assert gf.train.create_global_step(other).graph is other


def test_none_gradients_are_skipped() -> None:
    w = gf.Variable([1.0, 2.0], name="w")
    frozen = gf.Variable([5.0], name="frozen")
    opt = gf.train.MomentumOptimizer(0.5, 0.9)
    train_op = opt.apply_gradients([(gf.constant([1.0, 1.0]), w), (None, frozen)])
    assert opt.get_slot(frozen, "momentum") is None
    with gf.Session(mode="interpreted") as sess:
        sess.run(gf.global_variables_initializer())
        sess.run(train_op)
        w_value, frozen_value = sess.run([w, frozen])
    np.testing.assert_allclose(w_value, [0.5, 1.5])
    np.testing.assert_allclose(frozen_value, [5.0])


def test_hyperparameters_may_be_tensors_and_float64() -> None:
    w = gf.Variable(np.array([1.0, -1.0]), name="w")  # float64
    lr = gf.placeholder(gf.float32, [], name="lr")  # cast to float64 for the update
    train_op = gf.train.GradientDescentOptimizer(lr).apply_gradients(
        [(gf.constant(np.array([1.0, 2.0])), w)]
    )
    with gf.Session(mode="interpreted") as sess:
        sess.run(gf.global_variables_initializer())
        sess.run(train_op, {lr: 0.5})
        sess.run(train_op, {lr: 0.25})
        out = sess.run(w)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [1.0 - 0.75, -1.0 - 1.5])


# -- errors ----------------------------------------------------------------------------------
def _raises(cls: type[Exception], *fragments: str) -> Any:
    """pytest.raises that also checks the message names this file (the user's line)."""
    pattern = ".*".join(re.escape(f) for f in fragments)
    return pytest.raises(cls, match=f"(?s){pattern}")


def test_apply_gradients_errors() -> None:
    w = gf.Variable(np.zeros((2, 2), np.float32), name="w")
    v = gf.Variable(np.zeros(3, np.float32), name="v")
    count = gf.Variable(np.int32(0), name="count")
    opt = gf.train.AdamOptimizer()
    here = "test_train.py:"
    with _raises(
        errors.InvalidArgumentError,
        "Adam",
        here,
        "No gradients provided for any variable",
        "[w, v]",
    ):
        opt.apply_gradients([(None, w), (None, v)])
    with _raises(errors.InvalidArgumentError, here, "No variables provided"):
        opt.apply_gradients([])
    with _raises(
        errors.InvalidArgumentError,
        here,
        "does not have the variable's shape",
        "got (3,)",
        "expected (2, 2)",
    ):
        opt.apply_gradients([(gf.zeros([3]), w)])
    with _raises(errors.InvalidArgumentError, here, "gradient for w", "float64"):
        opt.apply_gradients([(gf.zeros([2, 2], gf.float64), w)])
    with _raises(
        errors.InvalidArgumentError, here, "can only optimize gf.Variables", "the tensor Const"
    ):
        opt.apply_gradients([(gf.zeros([2, 2]), gf.constant(np.zeros((2, 2), np.float32)))])
    with _raises(errors.InvalidArgumentError, here, "cannot optimize the variable count", "int32"):
        opt.apply_gradients([(gf.constant(1), count)])
    with _raises(errors.InvalidArgumentError, here, "w appears more than once"):
        opt.apply_gradients([(gf.zeros([2, 2]), w), (gf.ones([2, 2]), w)])
    with _raises(errors.InvalidArgumentError, here, "(gradient, variable) pair"):
        opt.apply_gradients([w])
    with _raises(errors.InvalidArgumentError, here, "global_step must be an integer gf.Variable"):
        opt.apply_gradients([(gf.zeros([2, 2]), w)], global_step=v)
    with _raises(errors.InvalidArgumentError, "initial_accumulator_value must be positive", "0.0"):
        gf.train.AdagradOptimizer(0.1, initial_accumulator_value=0.0)
    assert issubclass(errors.InvalidArgumentError, ValueError)


def test_compute_gradients_errors() -> None:
    opt = gf.train.GradientDescentOptimizer(0.1)
    here = "test_train.py:"
    with _raises(errors.InvalidArgumentError, here, "the loss must be a Tensor", "float"):
        opt.compute_gradients(3.0)
    with _raises(errors.InvalidArgumentError, here, "No variables to optimize"):
        opt.compute_gradients(gf.constant(1.0))
    x = gf.Variable(np.int32(2), name="x")
    with _raises(errors.InvalidArgumentError, here, "cannot differentiate", "int32"):
        opt.compute_gradients(x * 2)


# -- minimize: through gf.gradients ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["interpreted", "compiled"])
def test_minimize_matches_numpy_momentum(mode: str) -> None:
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((8, 3)).astype(np.float32)
    ys = rng.standard_normal((8, 2)).astype(np.float32)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    x = gf.placeholder(gf.float32, [None, 3])
    y = gf.placeholder(gf.float32, [None, 2])
    w = gf.Variable(w0, name="w")
    b = gf.Variable(np.zeros(2, np.float32), name="b")
    unused = gf.Variable(np.ones(2, np.float32), name="unused")
    loss = gf.reduce_mean(gf.square(gf.matmul(x, w) + b - y))
    opt = gf.train.MomentumOptimizer(0.1, 0.5)
    pairs = opt.compute_gradients(loss)
    assert [v for _, v in pairs] == [w, b, unused]
    assert pairs[2][0] is None and pairs[0][0] is not None
    train_op = opt.minimize(loss, var_list=[w, b, unused])
    assert opt.get_slot(unused, "momentum") is None
    expected_w, expected_b = w0.copy(), np.zeros(2, np.float32)
    acc_w, acc_b = np.zeros_like(expected_w), np.zeros_like(expected_b)
    with gf.Session(mode=mode) as sess:
        sess.run(gf.global_variables_initializer())
        for _ in range(3):
            # The fetched loss is the one before this step's update.
            _, loss_value = sess.run([train_op, loss], {x: xs, y: ys})
            residual = xs @ expected_w + expected_b - ys
            np.testing.assert_allclose(loss_value, np.mean(residual**2), rtol=1e-5)
            grad_out = 2.0 * residual / residual.size
            acc_w = acc_w * 0.5 + xs.T @ grad_out
            acc_b = acc_b * 0.5 + grad_out.sum(axis=0)
            expected_w -= 0.1 * acc_w
            expected_b -= 0.1 * acc_b
        np.testing.assert_allclose(sess.run(w), expected_w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sess.run(b), expected_b, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(sess.run(unused), np.ones(2))


def test_minimize_without_any_gradient_raises() -> None:
    gf.Variable([1.0], name="w")  # the only trainable variable; the loss ignores it
    x = gf.placeholder(gf.float32, [None])
    with _raises(
        errors.InvalidArgumentError,
        "test_train.py:",
        "No gradients provided for any variable",
        "[w]",
    ):
        gf.train.AdamOptimizer().minimize(gf.reduce_sum(x * 2.0))


def _mlp_step(optimizer: gf.train.Optimizer) -> dict[str, Any]:
    # Initial values are constants: the initializer compiles too, so any fallback
    # cache_info() reports comes from the training step.
    rng = np.random.default_rng(7)
    x = gf.placeholder(gf.float32, [None, 6], name="x")
    labels = gf.placeholder(gf.int64, [None], name="labels")
    w1 = gf.Variable(rng.normal(0, 0.5, (6, 16)).astype(np.float32), name="w1")
    b1 = gf.Variable(gf.zeros([16]), name="b1")
    w2 = gf.Variable(rng.normal(0, 0.5, (16, 3)).astype(np.float32), name="w2")
    b2 = gf.Variable(gf.zeros([3]), name="b2")
    logits = gf.matmul(gf.nn.relu(gf.matmul(x, w1) + b1), w2) + b2
    loss = gf.reduce_mean(
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    step = gf.train.get_or_create_global_step()
    train_op = optimizer.minimize(loss, global_step=step)
    return {
        "x": x,
        "labels": labels,
        "loss": loss,
        "train_op": train_op,
        "watch": [w1, b1, w2, b2, step],
        "init": gf.global_variables_initializer(),
    }


def test_compiled_training_step_matches_interpreted_with_no_fallback() -> None:
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((32, 6)).astype(np.float32)
    ys = rng.integers(0, 3, 32)
    g = _mlp_step(gf.train.AdamOptimizer(0.05))
    traces = {}
    for mode in ("interpreted", "compiled"):
        with gf.Session(mode=mode) as sess:
            sess.run(g["init"])
            trace = []
            for t in range(5):
                batch = slice(8 * (t % 4), 8 * (t % 4) + 8)
                _, loss_value = sess.run(
                    [g["train_op"], g["loss"]], {g["x"]: xs[batch], g["labels"]: ys[batch]}
                )
                trace.append([loss_value, *sess.run(g["watch"])])
            if mode == "compiled":
                assert sess.cache_info().fallbacks == ()
            traces[mode] = trace
    for t, (a, b) in enumerate(zip(traces["interpreted"], traces["compiled"])):
        for k, (u, v) in enumerate(zip(a, b)):
            np.testing.assert_allclose(v, u, rtol=1e-4, atol=1e-6, err_msg=f"step {t} value {k}")
    assert traces["compiled"][-1][-1] == 5  # the global step
