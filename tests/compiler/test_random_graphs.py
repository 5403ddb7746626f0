"""Random graphs: the graph as built, and optimized at O0, O1 and O2, give the same results.

hypothesis builds graphs from about 30 op kinds (elementwise math with
broadcasting and constants, comparisons and where, casts, reductions with and
without keepdims, matmul, softmax, shape ops, identities the simplifier
removes) and feeds them random data with NaN and Inf.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphflow as gf

B, N = 3, 4
SHAPES = [(B, N), (N,), (B, 1), (), (1, N)]


def _pick(data: st.DataObject, pool: list[gf.Tensor], want: Callable[[gf.Tensor], bool]):
    options = [t for t in pool if want(t)]
    return data.draw(st.sampled_from(options)) if options else None


def _float(t: gf.Tensor) -> bool:
    return t.dtype == gf.float32


def _matrix(t: gf.Tensor) -> bool:
    return _float(t) and t.shape.as_list() == [B, N]


def _const(data: st.DataObject) -> gf.Tensor:
    shape = data.draw(st.sampled_from(SHAPES))
    value = data.draw(st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0]))
    return gf.constant(np.full(shape, value, np.float32))


def _binary(fn):
    def build(data, pool):
        x = _pick(data, pool, _float)
        y = _pick(data, pool, _float) if data.draw(st.booleans()) else _const(data)
        return fn(x, y)

    return build


def _unary(fn):
    def build(data, pool):
        return fn(_pick(data, pool, _float))

    return build


def _reduce(fn):
    def build(data, pool):
        x = _pick(data, pool, lambda t: _float(t) and t.shape.rank == 2)
        if x is None:
            return None
        axis = data.draw(st.sampled_from([1, -1, 0, [0, 1], None]))
        keep = data.draw(st.booleans())
        return fn(x, axis=axis, keepdims=keep)

    return build


def _matmul(data, pool):
    x = _pick(data, pool, _matrix)
    if x is None:
        return None
    w = gf.constant(
        np.random.default_rng(data.draw(st.integers(0, 9))).standard_normal((N, N)), gf.float32
    )
    return gf.matmul(x, w, transpose_b=data.draw(st.booleans()))


def _softmax(fn):
    def build(data, pool):
        x = _pick(data, pool, _matrix)
        return None if x is None else fn(x)

    return build


def _where(data, pool):
    x = _pick(data, pool, _float)
    y = _pick(data, pool, _float)
    return gf.where(gf.greater(x, y), x, gf.negative(y))


def _cast_round_trip(data, pool):
    x = _pick(data, pool, _float)
    return gf.cast(gf.cast(x, gf.float64), gf.float32)


def _reshape_round_trip(data, pool):
    x = _pick(data, pool, _matrix)
    return None if x is None else gf.reshape(gf.reshape(x, [-1]), [B, N])


def _transpose_twice(data, pool):
    x = _pick(data, pool, _matrix)
    return None if x is None else gf.transpose(gf.transpose(x))


def _squeeze_expand(data, pool):
    x = _pick(data, pool, lambda t: _float(t) and t.shape.rank == 1)
    return None if x is None else gf.squeeze(gf.expand_dims(x, 0), [0])


def _concat_slice(data, pool):
    x = _pick(data, pool, _matrix)
    if x is None:
        return None
    return gf.concat([x, x], axis=1)[:, 1 : N + 1]


def _pow(data, pool):
    x = _pick(data, pool, _float)
    return x ** data.draw(st.sampled_from([1.0, 2.0, 0.5, -1.0, 3.0]))


BUILDERS = {
    "add": _binary(gf.add),
    "subtract": _binary(gf.subtract),
    "multiply": _binary(gf.multiply),
    "divide": _binary(gf.divide),
    "maximum": _binary(gf.maximum),
    "minimum": _binary(gf.minimum),
    "squared_difference": _binary(gf.squared_difference),
    "pow": _pow,
    "negative": _unary(gf.negative),
    "abs": _unary(gf.abs),
    "exp": _unary(gf.exp),
    "log": _unary(gf.log),
    "sqrt": _unary(gf.sqrt),
    "tanh": _unary(gf.tanh),
    "sigmoid": _unary(gf.sigmoid),
    "square": _unary(gf.square),
    "relu": _unary(gf.nn.relu),
    "gelu": _unary(lambda x: gf.nn.gelu(x, approximate=True)),
    "identity": _unary(gf.identity),
    "stop_gradient": _unary(gf.stop_gradient),
    "double_negative": _unary(lambda x: gf.negative(gf.negative(x))),
    "where": _where,
    "cast": _cast_round_trip,
    "reduce_sum": _reduce(gf.reduce_sum),
    "reduce_mean": _reduce(gf.reduce_mean),
    "reduce_max": _reduce(gf.reduce_max),
    "reduce_logsumexp": _reduce(gf.reduce_logsumexp),
    "matmul": _matmul,
    "softmax": _softmax(gf.nn.softmax),
    "log_softmax": _softmax(gf.nn.log_softmax),
    "reshape": _reshape_round_trip,
    "transpose": _transpose_twice,
    "squeeze": _squeeze_expand,
    "concat_slice": _concat_slice,
}


@st.composite
def random_graphs(draw):
    data = draw(st.data())
    graph = gf.Graph()
    with graph.as_default():
        x = gf.placeholder(gf.float32, [None, N], name="x")
        v = gf.placeholder(gf.float32, [N], name="v")
        s = gf.placeholder(gf.float32, [], name="s")
        pool = [x, v, s, _const(data)]
        kinds = []
        for _ in range(draw(st.integers(2, 12))):
            kind = draw(st.sampled_from(sorted(BUILDERS)))
            try:
                out = BUILDERS[kind](data, pool)
            except gf.errors.InvalidArgumentError:
                continue  # shapes that do not broadcast: the graph simply lacks this op
            if out is not None:
                pool.append(out)
                kinds.append(kind)
        fetches = pool[-draw(st.integers(1, 3)) :]
    return graph, (x, v, s), fetches, kinds


def _feeds(seed: int, placeholders) -> dict:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((B, N)) * 2).astype(np.float32)
    v = (rng.standard_normal(N) * 2).astype(np.float32)
    s = np.float32(rng.standard_normal())
    if seed % 3 == 0:
        x.reshape(-1)[rng.integers(0, B * N)] = np.nan
    if seed % 5 == 0:
        v[rng.integers(0, N)] = np.inf
    return dict(zip(placeholders, (x, v, s)))


def _run(graph, fetches, feeds, level, mode="interpreted"):
    with gf.Session(graph=graph, level=level, mode=mode) as sess:
        return sess.run(fetches, feeds)


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(), st.integers(0, 1000))
def test_levels_agree_on_random_graphs(case, seed) -> None:
    graph, placeholders, fetches, kinds = case
    feeds = _feeds(seed, placeholders)
    try:
        reference = _run(graph, fetches, feeds, None)
    except gf.errors.InvalidArgumentError:
        # Dims that agree when built but not when fed: every level must say so too.
        for level in ("O0", "O1", "O2"):
            with pytest.raises(gf.errors.InvalidArgumentError):
                _run(graph, fetches, feeds, level)
        return
    for level in ("O0", "O1", "O2"):
        results = _run(graph, fetches, feeds, level)
        for got, want in zip(results, reference):
            assert got.shape == want.shape and got.dtype == want.dtype, (level, kinds)
            np.testing.assert_allclose(
                got,
                want,
                rtol=2e-5,
                atol=1e-6,
                equal_nan=True,
                err_msg=f"level {level}, ops {kinds}",
            )


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(), st.integers(0, 1000))
def test_compiled_agrees_with_the_interpreter_on_random_graphs(case, seed) -> None:
    graph, placeholders, fetches, kinds = case
    feeds = _feeds(seed, placeholders)
    try:
        reference = _run(graph, fetches, feeds, None)
    except gf.errors.InvalidArgumentError:
        with pytest.raises(gf.errors.InvalidArgumentError):
            _run(graph, fetches, feeds, None, mode="compiled")
        return
    results = _run(graph, fetches, feeds, None, mode="compiled")
    for got, want in zip(results, reference):
        assert got.shape == want.shape and got.dtype == want.dtype, kinds
        # The compiled math library is within a few ulp of NumPy's; sums may reassociate.
        np.testing.assert_allclose(
            got, want, rtol=2e-4, atol=2e-5, equal_nan=True, err_msg=f"compiled, ops {kinds}"
        )


def test_the_generator_covers_enough_op_kinds() -> None:
    assert len(BUILDERS) >= 30
