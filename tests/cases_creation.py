"""Cases for ops that create values and for variables: constants, fills, ranges, assigns."""

from __future__ import annotations

import numpy as np
from optable import Case

import graphflow as gf

CASES: list[Case] = [
    Case(
        "constant/float-list",
        lambda x: x + gf.constant([1.5, 2.5, 3.5]),
        lambda x: x + np.float32([1.5, 2.5, 3.5]),
        [(2, 3)],
        ["float32"],
    ),
    Case(
        "constant/shape-broadcast",
        lambda x: x * gf.constant(2.0, shape=[2, 3]),
        lambda x: x * np.float32(2),
        [(2, 3)],
        ["float32"],
    ),
    Case(
        "constant/int-default-int32",
        lambda x: x + gf.constant([[1, 2]]),
        lambda x: x + np.int32([[1, 2]]),
        [(3, 2)],
        ["int32"],
    ),
    Case(
        "constant/numpy-keeps-dtype",
        lambda x: x + gf.constant(np.arange(3, dtype=np.int64)),
        lambda x: x + np.arange(3, dtype=np.int64),
        [(3,)],
        ["int64"],
    ),
    Case(
        "fill",
        lambda x: x + gf.fill([2, 3], 7.0),
        lambda x: x + np.float32(7),
        [(2, 3)],
        ["float32"],
    ),
    Case("zeros", lambda x: x + gf.zeros([4], gf.int32), lambda x: x, [(4,)], ["int32"]),
    Case("ones", lambda x: x * gf.ones([2, 2], gf.float64), lambda x: x, [(2, 2)], ["float64"]),
    Case("zeros_like", lambda x: gf.zeros_like(x), np.zeros_like, [(3, 0)], ["float32"]),
    Case(
        "ones_like/dtype",
        lambda x: gf.ones_like(x, dtype=gf.int64),
        lambda x: np.ones_like(x, dtype=np.int64),
        [(2, 5)],
        ["float32"],
    ),
    Case(
        "range/int",
        lambda x: x + gf.range(5),
        lambda x: x + np.arange(5, dtype=np.int32),
        [(5,)],
        ["int32"],
    ),
    Case(
        "range/float-step",
        lambda x: x + gf.range(1.0, 2.0, 0.25),
        lambda x: x + np.arange(1.0, 2.0, 0.25, dtype=np.float32),
        [(4,)],
        ["float32"],
    ),
    Case(
        "range/negative-delta",
        lambda x: x + gf.range(10, 0, -3),
        lambda x: x + np.arange(10, 0, -3, dtype=np.int32),
        [(4,)],
        ["int32"],
    ),
    Case(
        "placeholder_with_default/fed",
        lambda x: gf.placeholder_with_default(x, shape=[None, 3]) * 2.0,
        lambda x: x * np.float32(2),
        [(4, 3)],
        ["float32"],
    ),
    Case(
        "variable/assign",
        lambda x: gf.assign(gf.Variable(gf.zeros([3])), x),
        lambda x: x,
        [(3,)],
        ["float32"],
        none_dims=False,
    ),
    Case(
        "variable/assign_add",
        lambda x: gf.assign_add(gf.Variable(gf.ones([2, 3])), x),
        lambda x: x + np.float32(1),
        [(2, 3)],
        ["float32"],
        none_dims=False,
    ),
    Case(
        "variable/assign_sub",
        lambda x: gf.assign_sub(gf.Variable(gf.constant([5, 6], gf.int64)), x),
        lambda x: np.array([5, 6], np.int64) - x,
        [(2,)],
        ["int64"],
        none_dims=False,
    ),
    Case(
        "variable/read",
        lambda x: gf.Variable(gf.constant([[1.0, 2.0]])) * x,
        lambda x: np.float32([[1.0, 2.0]]) * x,
        [(3, 2)],
        ["float32"],
    ),
    Case(
        "group",
        lambda x: [gf.group(gf.no_op()), x + 1],
        lambda x: [None, x + 1],
        [(2,)],
        ["float32"],
    ),
]
