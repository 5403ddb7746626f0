"""optimize(): levels, disabling passes, reports, DOT dumps, and the benchmark workloads.

W3 (softmax), W4 (layernorm) and W5 (MLP with constant weights) of
shared/WORKLOADS.md must optimize to at most two fused nodes per softmax or
layernorm and one epilogue per matmul, with the results of the unoptimized
graph.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors
from graphflow.compiler.pipeline import PASS_NAMES, optimize


def _small_graph():
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    c = gf.constant([1.0, 2.0, 3.0, 4.0]) * 2.0
    y = gf.nn.softmax(gf.identity(x) * 1.0 + c)
    return x, y


def test_levels_run_their_passes() -> None:
    x, y = _small_graph()
    names = {
        level: [r.name for r in optimize(y, [x], level=level).report]
        for level in ("O0", "O1", "O2")
    }
    assert names["O0"] == ["prune"]
    assert names["O1"] == ["prune", "fold", "simplify", "cse"]
    assert names["O2"] == ["prune", "fold", "simplify", "cse", "expand", "fold", "cse", "fuse"]


def test_disable_a_pass_by_name() -> None:
    x, y = _small_graph()
    result = optimize(y, [x], disable=["fuse"])
    assert "fuse" not in [r.name for r in result.report]
    assert not result.fused_ops()
    assert optimize(y, [x]).fused_ops()


def test_unknown_level_or_pass_is_an_error() -> None:
    x, y = _small_graph()
    with pytest.raises(errors.InvalidArgumentError, match="unknown optimization level 'O3'"):
        optimize(y, [x], level="O3")
    with pytest.raises(errors.InvalidArgumentError, match=r"unknown pass name\(s\) \['fusion'\]"):
        optimize(y, [x], disable=["fusion"])
    assert set(PASS_NAMES) == {"prune", "fold", "simplify", "cse", "expand", "fuse"}


def test_report_counts_and_text() -> None:
    x, y = _small_graph()
    result = optimize(y, [x])
    assert result.report[0].nodes_before == len(gf.get_default_graph().get_operations())
    for before, after in zip(result.report, result.report[1:]):
        assert after.nodes_before == before.nodes_after
    assert result.report[-1].nodes_after == len(result.graph.get_operations())
    text = result.report_text()
    assert "fold" in text and "folded Mul" in text and "fused" in text


def test_user_graph_is_never_modified() -> None:
    x, y = _small_graph()
    graph = gf.get_default_graph()
    before = [(op.name, op.type, op.inputs) for op in graph.get_operations()]
    optimize(y, [x], level="O2")
    assert [(op.name, op.type, op.inputs) for op in graph.get_operations()] == before


def test_dump_dir_writes_a_dot_file_per_pass(tmp_path) -> None:
    x, y = _small_graph()
    optimize(y, [x], dump_dir=tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert files[0] == "00-input.dot" and files[-1] == "08-fuse.dot"
    assert len(files) == 9
    assert all((tmp_path / f).read_text().startswith("digraph") for f in files)


def test_fetches_by_name() -> None:
    _, y = _small_graph()
    result = optimize([y.name], ["x:0"])
    assert result.fetches[0].dtype == gf.float32


# -- the workloads -------------------------------------------------------------------------
def _compare(fetch, feeds: dict) -> None:
    with gf.Session() as ref, gf.Session(level="O2") as opt:
        want = ref.run(fetch, feeds)
        got = opt.run(fetch, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _fused_kinds(result) -> list[str]:
    return [op.attrs["body"].pattern for op in result.fused_ops()]


def test_w3_softmax_is_one_row_kernel() -> None:
    x = gf.placeholder(gf.float32, [None, 64])
    y = gf.nn.softmax(x)
    result = optimize(y, [x])
    assert [op.type for op in result.graph.get_operations()] == ["Placeholder", "Softmax"]
    _compare(y, {x: np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)})


def _layernorm(x, gamma, beta):
    mean = gf.reduce_mean(x, axis=-1, keepdims=True)
    var = gf.reduce_mean(gf.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * gf.rsqrt(var + 1e-5) * gamma + beta


def test_w4_layernorm_is_at_most_two_fused_nodes() -> None:
    x = gf.placeholder(gf.float32, [None, 64])
    gamma = gf.placeholder(gf.float32, [64])
    beta = gf.placeholder(gf.float32, [64])
    y = _layernorm(x, gamma, beta)
    result = optimize(y, [x, gamma, beta])
    compute = [op for op in result.graph.get_operations() if op.type != "Placeholder"]
    assert len(result.fused_ops()) <= 2 and len(compute) <= 2
    rng = np.random.default_rng(1)
    _compare(
        y,
        {
            x: rng.standard_normal((8, 64)).astype(np.float32),
            gamma: rng.standard_normal(64).astype(np.float32),
            beta: rng.standard_normal(64).astype(np.float32),
        },
    )


def test_w4_layernorm_with_moments() -> None:
    x = gf.placeholder(gf.float32, [None, 32])
    mean, var = gf.nn.moments(x, axes=[1], keepdims=True)
    y = (x - mean) * gf.rsqrt(var + 1e-5)
    result = optimize(y, [x])
    compute = [op for op in result.graph.get_operations() if op.type != "Placeholder"]
    assert len(compute) <= 2


def test_w5_mlp_has_one_epilogue_per_matmul() -> None:
    rng = np.random.default_rng(2)
    sizes = [784, 512, 512, 10]
    x = gf.placeholder(gf.float32, [None, 784])
    h = x
    for i in range(3):
        w = gf.constant(rng.standard_normal((sizes[i], sizes[i + 1])).astype(np.float32) * 0.05)
        b = gf.constant(rng.standard_normal(sizes[i + 1]).astype(np.float32) * 0.1)
        h = gf.matmul(h, w) + b
        if i < 2:
            h = gf.nn.relu(h)
    probs = gf.nn.softmax(h)
    result = optimize(probs, [x])
    matmuls = [op for op in result.graph.get_operations() if op.type == "MatMul"]
    contraction = [op for op in result.fused_ops() if op.attrs["body"].pattern == "contraction"]
    assert not matmuls and len(contraction) == 3  # every matmul carries its epilogue
    for op in contraction:
        body = [n.op_type for n in op.attrs["body"].nodes if n.op_type != "Const"]
        assert body.count("MatMul") == 1
    softmax_nodes = [
        op
        for op in result.graph.get_operations()
        if op.type in ("Max", "Fused") and op not in contraction
    ]
    assert len(softmax_nodes) <= 2
    _compare(probs, {x: rng.standard_normal((4, 784)).astype(np.float32)})
