"""Random ops: distributions, seeding (graph and op level), fresh numbers per run."""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors


def _draw(build, seed_graph=None, runs=1):
    g = gf.Graph()
    with g.as_default():
        if seed_graph is not None:
            gf.set_random_seed(seed_graph)
        t = build()
    with gf.Session(graph=g) as sess:
        return [sess.run(t) for _ in range(runs)]


def test_normal_statistics_and_dtype() -> None:
    (x,) = _draw(lambda: gf.random_normal([200_000], mean=3.0, stddev=2.0, seed=1))
    assert x.dtype == np.float32 and x.shape == (200_000,)
    assert abs(x.mean() - 3.0) < 0.03 and abs(x.std() - 2.0) < 0.03


def test_uniform_bounds() -> None:
    (x,) = _draw(lambda: gf.random_uniform([10_000], -2.0, 5.0, dtype=gf.float64, seed=2))
    assert x.dtype == np.float64 and x.min() >= -2.0 and x.max() < 5.0
    assert abs(x.mean() - 1.5) < 0.1
    (i,) = _draw(lambda: gf.random_uniform([10_000], 3, 7, dtype=gf.int32, seed=2))
    assert i.dtype == np.int32 and set(np.unique(i)) == {3, 4, 5, 6}


def test_truncated_normal_stays_within_two_stddevs() -> None:
    (x,) = _draw(lambda: gf.truncated_normal([50_000], mean=1.0, stddev=0.5, seed=3))
    assert x.min() >= 0.0 and x.max() <= 2.0
    assert abs(x.mean() - 1.0) < 0.01


def test_op_seed_is_reproducible_and_advances() -> None:
    first = _draw(lambda: gf.random_normal([4], seed=7), runs=2)
    second = _draw(lambda: gf.random_normal([4], seed=7), runs=2)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])


def test_graph_seed_makes_every_op_reproducible() -> None:
    def build():
        return [gf.random_uniform([3]), gf.random_uniform([3])]

    a = _draw(build, seed_graph=42)[0]
    b = _draw(build, seed_graph=42)[0]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])


def test_unseeded_differs_between_sessions() -> None:
    a = _draw(lambda: gf.random_normal([8]))[0]
    b = _draw(lambda: gf.random_normal([8]))[0]
    assert not np.array_equal(a, b)


def test_random_errors() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="maxval"):
        gf.random_uniform([2], dtype=gf.int32)
    with pytest.raises(errors.InvalidArgumentError, match="float32 or float64"):
        gf.random_normal([2], dtype=gf.int32)
    with pytest.raises(errors.InvalidArgumentError, match="negative dimension"):
        gf.random_normal([-1])
