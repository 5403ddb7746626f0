"""Each pass on small graphs: a *before* graph, the pass, and the *expected* graph.

The expected graph is built by hand and compared structurally (names do not
matter); results before and after are compared too.
"""

from __future__ import annotations

import numpy as np
import pytest
from structural import assert_same_structure, program_of

import graphflow as gf
from graphflow import errors
from graphflow.compiler.passes import cse, expand, fold, fuse, prune, simplify
from graphflow.compiler.passes.base import PassOptions
from graphflow.compiler.pipeline import optimize

OPTIONS = PassOptions()


def apply(pass_module, fetches, feeds=(), options=OPTIONS):
    """prune, then the pass, then prune again (dropping what the pass made dead)."""
    program = prune.run(program_of(fetches, feeds), options).program
    result = pass_module.run(program, options)
    return prune.run(result.program, options).program, result.changes


def expected(fetches, feeds=()):
    return prune.run(program_of(fetches, feeds), OPTIONS).program


def types(program) -> list[str]:
    return [op.type for op in program.graph.get_operations()]


# -- prune ---------------------------------------------------------------------------------
def test_prune_keeps_only_what_fetches_need() -> None:
    x = gf.placeholder(gf.float32, [2], name="x")
    y = gf.exp(x)
    gf.log(x)  # unused
    gf.constant(3.0)  # unused
    got, changes = apply(prune, [y], [x])
    assert types(got) == ["Placeholder", "Exp"]
    assert changes == ()  # the pass before `apply`'s own prune already dropped them
    first = prune.run(program_of([y], [x]), OPTIONS)
    assert first.changes == ("removed 2 op(s) the fetches do not need",)


def test_prune_fed_tensor_cuts_off_its_producer() -> None:
    x = gf.placeholder(gf.float32, [2], name="x")
    h = gf.exp(x)
    y = gf.sqrt(h)
    got, _ = apply(prune, [y], [h])
    g = gf.Graph()
    with g.as_default():
        h2 = gf.placeholder(gf.float32, [2])
        want = expected([gf.sqrt(h2)], [h2])
    assert_same_structure(got, want)


def test_prune_keeps_assigns_reached_through_control_dependencies() -> None:
    v = gf.Variable(0.0, name="v")
    inc = gf.assign_add(v, 1.0)
    with gf.control_dependencies([inc]):
        y = gf.identity(gf.constant(2.0))
    got, _ = apply(prune, [y])
    assert "AssignAdd" in types(got) and "VariableV2" in types(got)


def test_prune_keeps_fetched_ops() -> None:
    gf.Variable(1.0)
    init = gf.global_variables_initializer()
    got, _ = apply(prune, [init])
    assert sorted(types(got)) == sorted(["NoOp", "Assign", "VariableV2", "Const"])


def test_prune_multi_output_op_with_one_output_fed() -> None:
    a, b = gf.split(gf.constant([1.0, 2.0]), 2)
    y = a + b
    got, _ = apply(prune, [y], [b])
    assert "Split" in types(got) and types(got).count("Placeholder") == 1
    with gf.Session(level="O0") as sess:
        assert sess.run(y, {b: [10.0]}) == 11.0


# -- fold ----------------------------------------------------------------------------------
def test_fold_constant_subgraph_to_one_named_constant() -> None:
    x = gf.placeholder(gf.float32, [2], name="x")
    c = gf.multiply(gf.constant([1.0, 2.0]), 3.0, name="scaled")
    y = x + c
    got, changes = apply(fold, [y], [x])
    assert types(got) == ["Placeholder", "Const", "Add"]
    const = got.graph.get_operation_by_name("scaled")
    np.testing.assert_array_equal(const.attrs["value"], [3.0, 6.0])
    assert any("folded Mul 'scaled'" in c for c in changes)


def test_fold_leaves_placeholders_variables_and_random_ops() -> None:
    x = gf.placeholder(gf.float32, [2])
    v = gf.Variable([1.0, 2.0])
    r = gf.random_uniform([2], seed=1)
    y = (x + v) * r * 2.0
    got, changes = apply(fold, [y], [x])
    assert changes == ()
    assert {"VariableV2", "RandomUniform"} <= set(types(got))


def test_fold_size_cap_keeps_cheap_large_results_symbolic() -> None:
    big = gf.fill([1024, 1024], 1.0)  # 4 MiB from a scalar: cheaper to recompute
    small = gf.fill([4], 1.0)
    got, _ = apply(fold, [big, small])
    assert types(got).count("Fill") == 1
    got, _ = apply(fold, [big], options=PassOptions(fold_size_cap=1 << 30))
    assert "Fill" not in types(got)


def test_fold_shape_of_a_static_tensor() -> None:
    x = gf.placeholder(gf.float32, [3, 5])
    dyn = gf.placeholder(gf.float32, [None, 5])
    got, _ = apply(fold, [gf.shape(x), gf.shape(dyn), gf.rank(dyn)], [x, dyn])
    assert types(got).count("Shape") == 1 and "Rank" not in types(got)


def test_fold_keeps_ops_that_fail_for_run_time() -> None:
    y = gf.gather(gf.constant([1.0, 2.0]), gf.constant([5]))
    got, _ = apply(fold, [y])
    assert "GatherV2" in types(got)
    with gf.Session(level="O1") as sess, pytest.raises(errors.InvalidArgumentError, match="5"):
        sess.run(y)


# -- simplify ------------------------------------------------------------------------------
def _simplified(build, shape=(2, 3), dtype=gf.float32):
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(dtype, list(shape), name="x")
        got, changes = apply(simplify, [build(x)], [x])
    return got, changes


def _identity_program(shape=(2, 3), dtype=gf.float32):
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(dtype, list(shape), name="x")
        return expected([x], [x])


@pytest.mark.parametrize(
    "build",
    [
        lambda x: x * 1.0,
        lambda x: 1.0 * x,
        lambda x: x / 1.0,
        lambda x: x + gf.constant(-0.0),
        lambda x: x - 0.0,
        lambda x: gf.negative(gf.negative(x)),
        lambda x: gf.identity(x),
        lambda x: gf.stop_gradient(x),
        lambda x: gf.cast(x, gf.float32),
        lambda x: gf.cast(gf.cast(x, gf.float64), gf.float32),
        lambda x: gf.transpose(gf.transpose(x)),
        lambda x: gf.reshape(gf.reshape(x, [6]), [2, 3]),
        lambda x: x**1,
        lambda x: gf.maximum(x, x),
        lambda x: gf.concat([x], 0),
        lambda x: gf.tile(x, [1, 1]),
        lambda x: gf.where(gf.constant(True), x, x * 3.0),
    ],
)
def test_simplify_removes_exact_identities(build) -> None:
    got, changes = _simplified(build)
    assert changes, "a rule should fire"
    assert_same_structure(got, _identity_program())


@pytest.mark.parametrize(
    "build",
    [
        lambda x: x + 0.0,  # -0.0 + 0.0 = +0.0: not exact
        lambda x: x - gf.constant(-0.0),  # -0.0 - (-0.0) = +0.0: not exact
        lambda x: x * gf.ones([4, 2, 3]),  # broadcasting changes the shape
        lambda x: x * 0.0,  # NaN * 0 and Inf * 0 are NaN
        lambda x: x - x,  # NaN - NaN is NaN
    ],
)
def test_simplify_leaves_inexact_rewrites_alone(build) -> None:
    got, _ = _simplified(build)
    assert len(types(got)) > 1


def test_simplify_int_zero_is_exact() -> None:
    got, changes = _simplified(lambda x: x + 0, dtype=gf.int32)
    assert changes
    assert_same_structure(got, _identity_program(dtype=gf.int32))


@pytest.mark.parametrize(
    ("build", "op_types"),
    [
        (lambda x: x**2, ["Placeholder", "Square"]),
        (lambda x: x**-1, ["Placeholder", "Reciprocal"]),
        (lambda x: x * -1.0, ["Placeholder", "Neg"]),
        (
            lambda x: gf.transpose(gf.transpose(x, [1, 0, 2]), [0, 2, 1]),
            ["Placeholder", "Transpose"],
        ),
    ],
)
def test_simplify_strength_reductions(build, op_types) -> None:
    got, _ = _simplified(build, shape=(2, 3, 4))
    assert types(got) == op_types


def test_pow_half_matches_pow_on_special_values() -> None:
    x = gf.placeholder(gf.float64, [None])
    y = x**0.5
    data = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, -1.0, 4.0, 2.0, 1e-300])
    with gf.Session() as ref, gf.Session(level="O1") as opt:
        want, got = ref.run(y, {x: data}), opt.run(y, {x: data})
    numbers = ~np.isnan(want)  # the sign of a NaN carries no meaning in IEEE 754
    np.testing.assert_array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))
    np.testing.assert_allclose(got, want, rtol=1e-15, equal_nan=True)
    assert "Pow" not in types(optimize([y], [x], level="O1").program)


def test_simplify_reaches_a_fixed_point_or_raises() -> None:
    x = gf.placeholder(gf.float32, [2])
    y = -x

    def flip(site):  # rewrites Neg into an equivalent Neg forever
        return [site.emit("Neg", [site.inputs[0]])]

    program = prune.run(program_of([y], [x]), OPTIONS).program
    with pytest.raises(simplify.RewriteLimitError, match="no fixed point after 5 sweeps"):
        simplify.run(program, PassOptions(simplify_max_iterations=5), rules={"Neg": [flip]})


# -- cse -----------------------------------------------------------------------------------
def test_cse_merges_identical_ops() -> None:
    x = gf.placeholder(gf.float32, [2], name="x")
    a = gf.exp(x) + gf.constant([1.0, 2.0])
    b = gf.exp(x) + gf.constant([1.0, 2.0])
    got, changes = apply(cse, [a * b], [x])
    assert types(got) == ["Placeholder", "Exp", "Const", "Add", "Mul"]
    assert len(changes) == 3


def test_cse_keeps_random_stateful_and_different_ops() -> None:
    x = gf.placeholder(gf.float32, [2])
    r = gf.random_uniform([2], seed=1) + gf.random_uniform([2], seed=1)
    s = gf.reduce_sum(x, keepdims=True) + gf.reduce_sum(x, keepdims=False)
    v = gf.Variable([0.0, 0.0])
    u = gf.assign_add(v, x)
    w = gf.assign_add(v, x)
    got, changes = apply(cse, [r, s, u, w], [x])
    assert changes == ()
    assert types(got).count("RandomUniform") == 2 and types(got).count("Sum") == 2
    assert types(got).count("AssignAdd") == 2


# -- expand --------------------------------------------------------------------------------
def test_expand_softmax_of_an_elementwise_expression() -> None:
    x = gf.placeholder(gf.float32, [None, 5])
    got, _ = apply(expand, [gf.nn.softmax(x * 2.0)], [x])
    assert types(got) == ["Placeholder", "Const", "Mul", "Max", "Sub", "Exp", "Sum", "RealDiv"]


def test_softmax_of_an_input_keeps_its_row_kernel() -> None:
    x = gf.placeholder(gf.float32, [None, 5])
    got, changes = apply(expand, [gf.nn.softmax(x), gf.nn.log_softmax(x)], [x])
    assert types(got) == ["Placeholder", "Softmax", "LogSoftmax"] and changes == ()


def test_expand_log_softmax_l2_loss_bias_add() -> None:
    x = gf.placeholder(gf.float32, [None, 5])
    b = gf.placeholder(gf.float32, [5])
    got, changes = apply(
        expand, [gf.nn.log_softmax(gf.abs(x)), gf.nn.l2_loss(x), gf.nn.bias_add(x, b)], [x, b]
    )
    assert not {"LogSoftmax", "L2Loss", "BiasAdd"} & set(types(got))
    assert len(changes) == 3


# -- fuse ----------------------------------------------------------------------------------
def _fused(fetches, feeds):
    program = optimize(fetches, feeds, level="O2").program
    return program, [op for op in program.graph.get_operations() if op.type == "Fused"]


def test_fuse_elementwise_chain_into_one_node() -> None:
    x = gf.placeholder(gf.float32, [None, 8])
    y = gf.tanh(x * 2.0 + 1.0) * 0.5
    program, fused = _fused([y], [x])
    assert types(program) == ["Placeholder", "Fused"]
    body = fused[0].attrs["body"]
    assert body.pattern == "elementwise"
    assert [n.op_type for n in body.nodes if n.op_type != "Const"] == ["Mul", "Add", "Tanh", "Mul"]


def test_fuse_respects_convexity() -> None:
    # b = exp(a) goes through a reduction that c needs: {a, c} without the
    # reduction would leave the group and come back.
    x = gf.placeholder(gf.float32, [4, 8])
    a = gf.exp(x)
    total = gf.reduce_sum(gf.transpose(a))  # a transpose is not fusable
    c = a * total
    _, fused = _fused([c], [x])
    for op in fused:
        members = {n.op_type for n in op.attrs["body"].nodes}
        assert not ({"Exp", "Mul"} <= members and "Transpose" not in members)


def test_fuse_never_takes_ops_with_control_dependencies() -> None:
    x = gf.placeholder(gf.float32, [4])
    v = gf.Variable(0.0)
    inc = gf.assign_add(v, 1.0)
    with gf.control_dependencies([inc]):
        a = gf.exp(x)
    y = gf.sqrt(a)
    program, _ = _fused([y], [x])
    exp = next(op for op in program.graph.get_operations() if op.type == "Exp")
    assert exp.control_inputs


def test_fuse_reports_changes_and_results_agree() -> None:
    x = gf.placeholder(gf.float32, [None, 6])
    y = gf.nn.softmax(gf.nn.relu(x) * 3.0)
    result = optimize([y], [x], level="O2")
    fuse_report = next(r for r in result.report if r.name == "fuse")
    assert fuse_report.changes and fuse_report.nodes_after < fuse_report.nodes_before
    data = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    with gf.Session() as ref, gf.Session(level="O2") as opt:
        np.testing.assert_allclose(opt.run(y, {x: data}), ref.run(y, {x: data}), rtol=1e-6)


def test_fuse_pass_alone_on_a_graph_without_groups() -> None:
    x = gf.placeholder(gf.float32, [4])
    got, changes = apply(fuse, [gf.transpose(x)], [x])
    assert changes == () and types(got) == ["Placeholder", "Transpose"]
