"""The graph IR: names, scopes, default graphs, control dependencies, lookup, locations."""

from __future__ import annotations

import threading

import pytest

import graphflow as gf
from graphflow import errors


def test_unique_names_and_scopes() -> None:
    a = gf.constant(1.0, name="c")
    b = gf.constant(2.0, name="c")
    with gf.name_scope("layer") as scope:
        assert scope == "layer/"
        c = gf.add(a, b)
        with gf.name_scope("inner"):
            d = gf.multiply(c, 2.0, name="scaled")
    with gf.name_scope("layer") as scope2:
        e = gf.identity(a)
    assert (a.name, b.name) == ("c:0", "c_1:0")
    assert c.name == "layer/Add:0"
    assert d.name == "layer/inner/scaled:0"
    assert scope2 == "layer_1/"
    assert e.op.name == "layer_1/Identity"


def test_reentering_a_scope_by_its_full_name() -> None:
    with gf.name_scope("s"):
        pass
    with gf.name_scope("s/"):
        x = gf.constant(0.0, name="x")
    assert x.op.name == "s/x"


def test_tensor_properties() -> None:
    x = gf.placeholder(gf.float32, shape=[None, 3], name="x")
    assert x.dtype == gf.float32
    assert x.shape.as_list() == [None, 3]
    assert x.name == "x:0"
    assert x.op.type == "Placeholder"
    assert x.graph is gf.get_default_graph()
    assert x.value_index == 0
    assert "x:0" in repr(x)


def test_default_graph_stack() -> None:
    outer = gf.get_default_graph()
    g = gf.Graph()
    with g.as_default():
        assert gf.get_default_graph() is g
        t = gf.constant(1.0)
        with pytest.raises(errors.FailedPreconditionError, match="as_default"):
            gf.reset_default_graph()
    assert t.graph is g
    assert gf.get_default_graph() is outer
    gf.reset_default_graph()
    assert gf.get_default_graph() is not outer


def test_default_graph_is_per_thread() -> None:
    g = gf.Graph()
    seen = []
    with g.as_default():
        worker = threading.Thread(target=lambda: seen.append(gf.get_default_graph()))
        worker.start()
        worker.join()
    assert seen[0] is not g


def test_mixing_graphs_is_an_error() -> None:
    a = gf.constant(1.0)
    g = gf.Graph()
    with g.as_default():
        b = gf.constant(2.0)
    with pytest.raises(errors.InvalidArgumentError, match="another graph"):
        gf.add(a, b)


def test_control_dependencies() -> None:
    a = gf.constant(1.0, name="a")
    b = gf.constant(2.0, name="b")
    with gf.control_dependencies([a, b.op]):
        c = gf.identity(a)
        with gf.control_dependencies(None):
            d = gf.identity(b)
        with gf.control_dependencies([c]):
            e = gf.identity(b)
    assert list(c.op.control_inputs) == [a.op, b.op]
    assert d.op.control_inputs == ()
    assert set(e.op.control_inputs) == {a.op, b.op, c.op}


def test_control_dependency_runs_first() -> None:
    v = gf.Variable(0.0)
    inc = gf.assign_add(v, 1.0)
    with gf.control_dependencies([inc]):
        out = gf.identity(gf.constant(5.0))
    with gf.Session() as sess:
        sess.run(gf.global_variables_initializer())
        sess.run(out)
        sess.run(out)
        assert sess.run(v) == 2.0


def test_finalize() -> None:
    g = gf.get_default_graph()
    gf.constant(1.0)
    g.finalize()
    assert g.finalized
    with pytest.raises(errors.FailedPreconditionError, match="finalized"):
        gf.constant(2.0)


def test_lookup_by_name() -> None:
    x = gf.placeholder(gf.float32, name="x")
    y = gf.split(gf.constant([1.0, 2.0]), 2, name="parts")
    g = gf.get_default_graph()
    assert g.get_tensor_by_name("x:0") is x
    assert g.get_operation_by_name("x") is x.op
    assert g.get_tensor_by_name("parts:1") is y[1]
    with pytest.raises(errors.NotFoundError, match="'nope:0'"):
        g.get_tensor_by_name("nope:0")
    with pytest.raises(errors.NotFoundError, match="has 2 output"):
        g.get_tensor_by_name("parts:2")
    with pytest.raises(errors.InvalidArgumentError, match="'x:0'"):
        g.get_tensor_by_name("x")
    with pytest.raises(errors.InvalidArgumentError, match="refers to a Tensor"):
        g.get_operation_by_name("x:0")
    with pytest.raises(errors.NotFoundError, match="did you mean 'x'"):
        g.get_operation_by_name("xx")
    # NotFoundError is also a KeyError, InvalidArgumentError also a ValueError.
    with pytest.raises(KeyError):
        g.get_operation_by_name("missing")
    with pytest.raises(ValueError):
        g.get_tensor_by_name("x")


def test_source_location_points_at_user_line() -> None:
    x = gf.placeholder(gf.float32, shape=[2])
    y = x * 2.0  # the line recorded
    filename, line = y.op.location
    assert filename == __file__
    import inspect

    source = inspect.getsource(test_source_location_points_at_user_line).splitlines()
    recorded = next(s for s in source if "the line recorded" in s)
    first = inspect.getsourcelines(test_source_location_points_at_user_line)[1]
    assert line == first + source.index(recorded)


def test_tensor_misuse_raises_type_errors() -> None:
    x = gf.constant([1.0, 2.0])
    with pytest.raises(TypeError, match="Python bool"):
        bool(x)
    with pytest.raises(TypeError, match="not iterable"):
        iter(x)
    with pytest.raises(TypeError, match="NumPy array"):
        import numpy as np

        np.asarray(x)


def test_equality_is_identity() -> None:
    a = gf.constant(1.0)
    b = gf.constant(1.0)
    assert a == a and a != b
    assert len({a, b, a}) == 2


def test_collections_and_variables() -> None:
    w = gf.Variable(gf.zeros([2]), name="w")
    b = gf.Variable(gf.zeros([1]), name="b", trainable=False)
    assert gf.global_variables() == [w, b]
    assert gf.trainable_variables() == [w]
    assert w.op.type == "VariableV2" and w.name == "w:0"
    assert w.initializer.type == "Assign"
    assert w.initializer.name == "w/Assign"


def test_set_shape_refines_and_checks() -> None:
    x = gf.placeholder(gf.float32, shape=[None, 3])
    x.set_shape([5, None])
    assert x.shape.as_list() == [5, 3]
    with pytest.raises(errors.InvalidArgumentError, match="set_shape"):
        x.set_shape([4, 3])
