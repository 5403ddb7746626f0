"""The Session: fetch structures, feeds, variables, make_callable, threads, lifetime."""

from __future__ import annotations

import collections
import threading

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors


@pytest.fixture
def graph():
    x = gf.placeholder(gf.float32, shape=[None, 2], name="x")
    y = gf.multiply(x, 2.0, name="y")
    z = gf.add(y, 1.0, name="z")
    return x, y, z


def test_fetch_structures(graph) -> None:
    x, y, z = graph
    feed = {x: [[1.0, 2.0]]}
    pair = collections.namedtuple("pair", "a b")
    with gf.Session() as sess:
        assert isinstance(sess.run(y, feed), np.ndarray)
        out = sess.run([y, (z, "y:0"), {"k": z, "op": z.op}, pair(a=y, b=[z])], feed)
    np.testing.assert_array_equal(out[0], [[2.0, 4.0]])
    assert isinstance(out[1], tuple)
    np.testing.assert_array_equal(out[1][0], [[3.0, 5.0]])
    np.testing.assert_array_equal(out[1][1], [[2.0, 4.0]])
    assert out[2]["op"] is None
    np.testing.assert_array_equal(out[2]["k"], [[3.0, 5.0]])
    assert isinstance(out[3], pair)
    np.testing.assert_array_equal(out[3].b[0], [[3.0, 5.0]])


def test_ordered_dict_and_op_name_fetches(graph) -> None:
    x, _, _ = graph
    with gf.Session() as sess:
        out = sess.run(collections.OrderedDict([("b", "z:0"), ("a", "z")]), {x: [[0.0, 0.0]]})
    assert list(out) == ["b", "a"]
    assert out["a"] is None


def test_only_needed_ops_run() -> None:
    x = gf.placeholder(gf.float32, name="x")
    unused = gf.placeholder(gf.float32, name="unused")
    y = x + 1.0
    _ = unused * 2.0
    v = gf.Variable(1.0)  # never initialized: reading it would fail
    _ = v + y
    with gf.Session() as sess:
        assert sess.run(y, {x: 1.0}) == 2.0


def test_feed_by_name_and_intermediate_tensor(graph) -> None:
    _, y, z = graph
    with gf.Session() as sess:
        np.testing.assert_array_equal(sess.run(z, {"x:0": [[1.0, 1.0]]}), [[3.0, 3.0]])
        np.testing.assert_array_equal(sess.run(z, {"x": [[1.0, 1.0]]}), [[3.0, 3.0]])
        # Feeding y cuts off its producer: x need not be fed.
        np.testing.assert_array_equal(sess.run(z, {y: [[10.0, 20.0]]}), [[11.0, 21.0]])


def test_feed_conversions(graph) -> None:
    x, y, _ = graph
    with gf.Session() as sess:
        # Python floats and ints, and float64 arrays, into float32 are fine.
        assert sess.run(y, {x: [[1, 2.5]]}).dtype == np.float32
        assert sess.run(y, {x: np.ones((1, 2), np.float64)}).dtype == np.float32
        i = gf.placeholder(gf.int32, shape=[2])
        with pytest.raises(errors.InvalidArgumentError, match="float64 to int32"):
            sess.run(i + 1, {i: np.array([1.5, 2.0])})
        with pytest.raises(errors.InvalidArgumentError, match="outside the range of int32"):
            sess.run(i + 1, {i: np.array([2**40, 1])})
        b = gf.placeholder(gf.bool, shape=[])
        with pytest.raises(errors.InvalidArgumentError, match="to bool"):
            sess.run(gf.logical_not(b), {b: 1})
        with pytest.raises(errors.InvalidArgumentError, match="wrong dtype"):
            sess.run(y, {x: [["a", "b"]]})


def test_feed_errors_name_the_placeholder(graph) -> None:
    x, y, z = graph
    with gf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(z, {x: np.ones((2, 3), np.float32)})
        message = str(info.value)
        assert "Placeholder op 'x'" in message and "test_session.py" in message
        assert "(2, 3)" in message and "(?, 2)" in message
        with pytest.raises(
            errors.InvalidArgumentError, match="you must feed a value for placeholder tensor 'x:0'"
        ):
            sess.run(z)
        with pytest.raises(errors.NotFoundError, match="nope"):
            sess.run(z, {"nope:0": 1.0})
        with pytest.raises(errors.NotFoundError):
            sess.run("nope:0")
        with pytest.raises(errors.InvalidArgumentError, match="symbolic"):
            sess.run(z, {x: y})
        with pytest.raises(errors.InvalidArgumentError, match="feed_dict must be a dict"):
            sess.run(z, [x])
        with pytest.raises(errors.InvalidArgumentError, match="fetch argument None"):
            sess.run(None)
        with pytest.raises(errors.InvalidArgumentError, match="cannot fetch 3"):
            sess.run(3)


def test_variables_live_in_the_session() -> None:
    w = gf.Variable([1.0, 2.0], name="w")
    update = gf.assign(w, w * 2.0)
    s1 = gf.Session()
    s2 = gf.Session()
    s1.run(gf.global_variables_initializer())
    s2.run(w.initializer)
    s1.run(update)
    s1.run(update)
    np.testing.assert_array_equal(s1.run(w), [4.0, 8.0])
    np.testing.assert_array_equal(s2.run(w), [1.0, 2.0])


def test_uninitialized_variable_is_an_error() -> None:
    w = gf.Variable(gf.zeros([3]), name="weights")
    y = w + 1.0
    with gf.Session() as sess, pytest.raises(errors.FailedPreconditionError) as info:
        sess.run(y)
    message = str(info.value)
    assert "uninitialized value weights" in message and "test_session.py" in message


def test_fetched_arrays_are_the_callers() -> None:
    w = gf.Variable([1.0, 2.0])
    c = gf.constant([5.0, 6.0])
    x = gf.placeholder(gf.float32, [2])
    with gf.Session() as sess:
        sess.run(gf.global_variables_initializer())
        value = sess.run(w)
        value[0] = 100.0
        np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
        const = sess.run(c)
        const[:] = 0.0
        np.testing.assert_array_equal(sess.run(c), [5.0, 6.0])
        fed = np.array([1.0, 2.0], np.float32)
        out = sess.run(gf.identity(x), {x: fed})
        out[0] = 9.0
        assert fed[0] == 1.0


def test_assign_shape_and_dtype_checks() -> None:
    w = gf.Variable(gf.zeros([2]), name="w")
    with pytest.raises(errors.InvalidArgumentError, match="variable's shape"):
        gf.assign(w, [1.0, 2.0, 3.0])
    with pytest.raises(errors.InvalidArgumentError, match="float32"):
        gf.assign(w, gf.constant([1, 2]))
    with pytest.raises(errors.InvalidArgumentError, match="must be a Variable"):
        gf.assign(gf.constant([1.0, 2.0]), [1.0, 2.0])
    p = gf.placeholder(gf.float32, [None])
    grow = gf.assign(w, p)
    with gf.Session() as sess:
        sess.run(w.initializer)
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(grow, {p: [1.0, 2.0, 3.0]})
        message = str(info.value)
        assert "Assign op" in message and "test_session.py" in message
        assert "(3,)" in message and "(2,)" in message
        np.testing.assert_array_equal(sess.run(w), [0.0, 0.0])


def test_variable_load_and_eval() -> None:
    w = gf.Variable(gf.zeros([2]))
    with gf.Session() as sess:
        w.load([3.0, 4.0], sess)
        np.testing.assert_array_equal(w.eval(), [3.0, 4.0])
        np.testing.assert_array_equal((w * 2.0).eval(session=sess), [6.0, 8.0])
    with pytest.raises(errors.FailedPreconditionError, match="no default session"):
        w.eval()


def test_make_callable(graph) -> None:
    x, y, z = graph
    with gf.Session() as sess:
        f = sess.make_callable([y, z], feed_list=[x])
        out = f(np.ones((3, 2), np.float32))
        np.testing.assert_array_equal(out[1], np.full((3, 2), 3.0))
        g = sess.make_callable(z, feed_list=["x:0"])
        np.testing.assert_array_equal(g([[0.0, 1.0]]), [[1.0, 3.0]])
        with pytest.raises(errors.InvalidArgumentError, match="takes 1 feed value"):
            f()
        with pytest.raises(errors.InvalidArgumentError, match="wrong shape"):
            f(np.ones((3, 3)))


def test_closed_session() -> None:
    c = gf.constant(1.0)
    sess = gf.Session()
    sess.close()
    with pytest.raises(errors.FailedPreconditionError, match="closed Session"):
        sess.run(c)


def test_unknown_mode() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="unknown Session mode"):
        gf.Session(mode="fast")


def test_session_on_explicit_graph() -> None:
    g = gf.Graph()
    with g.as_default():
        c = gf.constant(3.0)
    with gf.Session(graph=g) as sess:
        assert sess.graph is g
        assert sess.run(c) == 3.0
    other = gf.constant(1.0)
    with (
        gf.Session(graph=g) as sess,
        pytest.raises(errors.InvalidArgumentError, match="another graph"),
    ):
        sess.run(other)


def test_interactive_session_is_default() -> None:
    c = gf.constant(2.0)
    sess = gf.InteractiveSession()
    try:
        assert c.eval() == 2.0
    finally:
        sess.close()
    assert gf.get_default_session() is None


def test_placeholder_with_default_unfed() -> None:
    p = gf.placeholder_with_default(gf.constant([1.0, 2.0]), shape=[None])
    with gf.Session() as sess:
        np.testing.assert_array_equal(sess.run(p * 2.0), [2.0, 4.0])
        np.testing.assert_array_equal(sess.run(p * 2.0, {p: [5.0]}), [10.0])


def test_runtime_failure_names_the_op() -> None:
    a = gf.placeholder(gf.float32, [None])
    b = gf.placeholder(gf.float32, [None])
    c = gf.add(a, b, name="sum")
    with gf.Session() as sess, pytest.raises(errors.InvalidArgumentError) as info:
        sess.run(c, {a: [1.0, 2.0], b: [1.0, 2.0, 3.0]})
    message = str(info.value)
    assert "Add op 'sum'" in message and "test_session.py" in message and "(2,), (3,)" in message


def test_threads_share_a_session() -> None:
    x = gf.placeholder(gf.float64, [None])
    v = gf.Variable(gf.constant(0, gf.int64))
    inc = gf.assign_add(v, gf.constant(1, gf.int64))
    y = gf.reduce_sum(x * x)
    errors_seen: list[BaseException] = []
    with gf.Session() as sess:
        sess.run(v.initializer)

        def work(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                for _ in range(50):
                    data = rng.standard_normal(rng.integers(1, 100))
                    np.testing.assert_allclose(sess.run(y, {x: data}), (data * data).sum())
                    sess.run(inc)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors_seen.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors_seen, errors_seen
        assert sess.run(v) == 200  # assign_add never loses an update
