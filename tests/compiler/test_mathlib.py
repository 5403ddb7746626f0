"""The math library: accuracy against wider references, exact special values, vector code."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from llvmlite import ir

from graphflow import errors
from graphflow.compiler.lowering import mathlib
from graphflow.compiler.lowering._testing import Kernels, ulp_error
from graphflow.ops.math_ops import _sigmoid

DTYPES = ("float32", "float64")
UNARY = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "sin", "cos")


@pytest.fixture(scope="module", params=DTYPES)
def kernels(request: pytest.FixtureRequest) -> Kernels:
    """One compiled module per dtype, with a loop kernel for every function."""
    return Kernels(request.param)


# -- references ----------------------------------------------------------------------------
_math_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid_wide(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


WIDE = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "sigmoid": _sigmoid_wide,
    "sin": np.sin,
    "cos": np.cos,
}


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """float32: float64 NumPy (not rounded); float64: 80-bit long double.

    erf comes from Python's math.erf (libm, within an ulp of float64) for both, so the
    float64 erf bound includes that reference's own error.
    """
    with np.errstate(all="ignore"):
        if name == "erf":
            return _math_erf(x.astype(np.float64)).astype(np.float64).astype(np.longdouble)
        if x.dtype == np.float32:
            return WIDE[name](x.astype(np.float64))
        return WIDE[name](x.astype(np.longdouble))


def numpy_semantics(name: str, x: np.ndarray) -> np.ndarray:
    """What NumPy (or graphflow's reference for sigmoid and erf) returns in x's dtype."""
    with np.errstate(all="ignore"):
        if name == "erf":
            return _math_erf(x.astype(np.float64)).astype(x.dtype)
        if name == "sigmoid":
            return _sigmoid(x)
        return getattr(np, name)(x)


def assert_identical(result: np.ndarray, expected: np.ndarray, inputs: tuple) -> None:
    """Equal values, NaN where NaN, and the same sign on zeros."""
    same = (result == expected) & (np.signbit(result) == np.signbit(expected))
    same |= np.isnan(result) & np.isnan(expected)
    bad = np.flatnonzero(~same)
    assert bad.size == 0, [
        (tuple(float(a.flat[i]) for a in inputs), float(result.flat[i]), float(expected.flat[i]))
        for i in bad[:10]
    ]


# -- accuracy ------------------------------------------------------------------------------
# Max ulp error allowed (measured maxima are in docs/numerics.md) and the ranges sampled
# densely, on top of random bit patterns that cover every exponent, denormals included.
ACCURACY = {
    # name: (float32 bound, float64 bound, float32 ranges, float64 ranges)
    "exp": (1.0, 1.0, [(-104, 89)], [(-746, 710)]),
    "expm1": (1.5, 2.0, [(-20, 89), (-1, 1)], [(-40, 710), (-1, 1)]),
    "log": (1.0, 1.0, [(0, 10)], [(0, 10)]),
    "log1p": (2.0, 2.0, [(-1, 10), (-1e-3, 1e-3)], [(-1, 10), (-1e-3, 1e-3)]),
    "tanh": (3.0, 3.0, [(-12, 12), (-0.5, 0.5)], [(-25, 25), (-0.5, 0.5)]),
    "sigmoid": (3.0, 3.0, [(-110, 110), (-5, 5)], [(-750, 750), (-5, 5)]),
    "erf": (1.0, 2.0, [(-7, 7), (-1.5, 1.5)], [(-7, 7), (-1.5, 1.5)]),
    "sin": (1.0, 2.0, [(-10, 10), (-1e6, 1e6)], [(-10, 10), (-1e6, 1e6)]),
    "cos": (1.0, 2.0, [(-10, 10), (-1e6, 1e6)], [(-10, 10), (-1e6, 1e6)]),
}


def sample(dtype: np.dtype, ranges: list[tuple[float, float]], count: int) -> np.ndarray:
    rng = np.random.default_rng(1234)
    width = 32 if dtype == np.float32 else 64
    bits = rng.integers(0, 2**width, count, dtype=np.uint64, endpoint=False)
    parts = [bits.astype(f"uint{width}").view(dtype)]
    parts += [rng.uniform(lo, hi, count).astype(dtype) for lo, hi in ranges]
    return np.concatenate(parts)


@pytest.mark.parametrize("name", UNARY)
def test_accuracy_within_stated_ulps(kernels: Kernels, name: str) -> None:
    bound32, bound64, ranges32, ranges64 = ACCURACY[name]
    is32 = kernels.dtype == np.float32
    x = sample(kernels.dtype, ranges32 if is32 else ranges64, 20_000)
    if name in ("sin", "cos"):
        x = x[~(np.abs(x) >= 2.0**50)]  # beyond, only bounded (see test_sincos_huge_arguments)
    error = ulp_error(kernels(name, x), reference(name, x), kernels.dtype)
    worst = int(np.argmax(error))
    assert error[worst] <= (bound32 if is32 else bound64), (float(x[worst]), error[worst])


def test_pow_accuracy(kernels: Kernels) -> None:
    rng = np.random.default_rng(7)
    dtype = kernels.dtype
    n = 20_000
    x = np.concatenate(
        [
            np.exp(rng.uniform(-80, 80, n)),  # results over the whole range, denormals too
            rng.uniform(0.5, 2, n),
            -rng.uniform(0, 10, n),
        ]
    ).astype(dtype)
    y = np.concatenate(
        [
            rng.uniform(-5, 5, n),
            rng.uniform(-2000, 2000, n),
            np.round(rng.uniform(-40, 40, n)),
        ]
    ).astype(dtype)
    wide = np.float64 if dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        expected = np.power(x.astype(wide), y.astype(wide))
    error = ulp_error(kernels("pow", x, y), expected, dtype)
    worst = int(np.argmax(error))
    bound = 1.0 if dtype == np.float32 else 2.0
    assert error[worst] <= bound, (float(x[worst]), float(y[worst]), error[worst])


def test_denormal_results_and_arguments(kernels: Kernels) -> None:
    dtype = kernels.dtype
    info = np.finfo(dtype)
    tiny = float(info.smallest_normal)
    rng = np.random.default_rng(3)
    denormals = (rng.uniform(0, 1, 2000) * tiny).astype(dtype)
    lowest = -103.9 if dtype == np.float32 else -745.1
    into_denormals = np.linspace(lowest, math.log(tiny), 2000).astype(dtype)
    both_signs = np.concatenate([denormals, -denormals])
    cases = [("exp", into_denormals), ("sigmoid", into_denormals), ("log", denormals)]
    cases += [(n, both_signs) for n in ("exp", "expm1", "log1p", "tanh", "erf", "sin", "cos")]
    for name, x in cases:
        result = kernels(name, x)
        error = ulp_error(result, reference(name, x), dtype)
        assert error.max() <= 1.0, (name, float(x[np.argmax(error)]), error.max())
    assert np.all(kernels("exp", into_denormals)[into_denormals < math.log(tiny) - 1] < tiny)


# -- special values ------------------------------------------------------------------------
def special_inputs(dtype: np.dtype) -> np.ndarray:
    info = np.finfo(dtype)
    values = [
        0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        math.inf,
        math.nan,
        1e-30,
        1e30,
        float(info.max),
        float(info.smallest_normal),
        float(info.smallest_subnormal),
        88.72283,
        89.0,
        103.97,
        104.0,
        709.78,
        710.0,
        745.13,
        746.0,
        17.0,
        40.0,
        9.0,
        20.0,
        6.0,
        1e20,
    ]
    values = np.array(values + [-v for v in values], np.float64)
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
        return np.concatenate([values, np.nextafter(values, np.inf), np.nextafter(values, -np.inf)])


@pytest.mark.parametrize("name", UNARY)
def test_special_values_match_numpy(kernels: Kernels, name: str) -> None:
    x = special_inputs(kernels.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = numpy_semantics(name, x)
    result = kernels(name, x)
    exact = np.isnan(expected) | np.isinf(expected) | (expected == 0)
    assert_identical(result[exact], expected[exact], (x[exact],))


SPECIAL = {
    # name: [(argument, expected), ...]; checked in both dtypes unless the value says otherwise
    "exp": [
        (math.nan, math.nan),
        (math.inf, math.inf),
        (-math.inf, 0.0),
        (-0.0, 1.0),
        (0.0, 1.0),
        (1e10, math.inf),
        (-1e10, 0.0),
    ],
    "expm1": [
        (math.nan, math.nan),
        (math.inf, math.inf),
        (-math.inf, -1.0),
        (-0.0, -0.0),
        (0.0, 0.0),
        (1e10, math.inf),
        (-1e10, -1.0),
    ],
    "log": [
        (math.nan, math.nan),
        (0.0, -math.inf),
        (-0.0, -math.inf),
        (-1.0, math.nan),
        (math.inf, math.inf),
        (-math.inf, math.nan),
        (1.0, 0.0),
    ],
    "log1p": [
        (math.nan, math.nan),
        (-1.0, -math.inf),
        (-2.0, math.nan),
        (-0.0, -0.0),
        (0.0, 0.0),
        (math.inf, math.inf),
        (-math.inf, math.nan),
    ],
    "tanh": [
        (math.nan, math.nan),
        (math.inf, 1.0),
        (-math.inf, -1.0),
        (-0.0, -0.0),
        (0.0, 0.0),
        (30.0, 1.0),
        (-30.0, -1.0),
    ],
    "sigmoid": [
        (math.nan, math.nan),
        (math.inf, 1.0),
        (-math.inf, 0.0),
        (-0.0, 0.5),
        (0.0, 0.5),
        (-800.0, 0.0),
        (800.0, 1.0),
    ],
    "erf": [
        (math.nan, math.nan),
        (math.inf, 1.0),
        (-math.inf, -1.0),
        (-0.0, -0.0),
        (0.0, 0.0),
        (6.5, 1.0),
        (-6.5, -1.0),
    ],
    "sin": [
        (math.nan, math.nan),
        (math.inf, math.nan),
        (-math.inf, math.nan),
        (-0.0, -0.0),
        (0.0, 0.0),
    ],
    "cos": [
        (math.nan, math.nan),
        (math.inf, math.nan),
        (-math.inf, math.nan),
        (-0.0, 1.0),
        (0.0, 1.0),
    ],
}


@pytest.mark.parametrize("name", UNARY)
def test_special_values_exact(kernels: Kernels, name: str) -> None:
    x = np.array([a for a, _ in SPECIAL[name]], kernels.dtype)
    expected = np.array([v for _, v in SPECIAL[name]], kernels.dtype)
    assert_identical(kernels(name, x), expected, (x,))


def test_overflow_and_underflow_bounds(kernels: Kernels) -> None:
    if kernels.dtype == np.float32:
        cases = {
            "exp": [(89.0, math.inf), (88.7, 3.32598e38), (-104.0, 0.0), (-103.0, 1.8e-45)],
            "expm1": [(89.0, math.inf), (88.7, 3.32598e38)],
        }
    else:
        cases = {
            "exp": [(710.0, math.inf), (709.7, 1.6549e308), (-746.0, 0.0), (-745.0, 5e-324)],
            "expm1": [(710.0, math.inf), (709.7, 1.6549e308)],
        }
    for name, pairs in cases.items():
        x = np.array([a for a, _ in pairs], kernels.dtype)
        result = kernels(name, x)
        for (argument, expected), value in zip(pairs, result.tolist()):
            assert value == pytest.approx(expected, rel=1e-4), (name, argument, value)
    assert kernels("exp", np.array([-103.0], kernels.dtype))[0] > 0


def test_pow_special_cases_match_numpy(kernels: Kernels) -> None:
    """C99 pow special cases (np.power with an array exponent), over a grid of both."""
    dtype = kernels.dtype
    values = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        3.0,
        -3.0,
        -8.0,
        1 / 3,
        2.5,
        -2.5,
        math.inf,
        -math.inf,
        math.nan,
        1e10,
        -1e10,
        2.0**60,
        -(2.0**60),
        2.0**53 + 2,
        1e-30,
        127.0,
        -149.0,
        1e-45,
        -1e-45,
        4.9e-324,
        1e300,
    ]
    with np.errstate(over="ignore", under="ignore"):
        grid = np.array(values, np.float64).astype(dtype)
    x, y = (a.ravel() for a in np.meshgrid(grid, grid))
    with np.errstate(all="ignore"):
        expected = np.power(x, y)
    result = kernels("pow", x, y)
    # The C99 special cases (an operand that is 0, +-1, +-inf or NaN) are exact; the
    # rest, overflow and underflow included, is held to the ulp bound.
    exact = np.isin(np.abs(x), [0.0, 1.0, math.inf]) | np.isin(np.abs(y), [0.0, math.inf])
    exact |= np.isnan(x) | np.isnan(y) | (y == 1)
    assert_identical(result[exact], expected[exact], (x[exact], y[exact]))
    wide = np.float64 if dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        error = ulp_error(
            result[~exact], np.power(x[~exact].astype(wide), y[~exact].astype(wide)), dtype
        )
    assert error.max() <= 2.0


def test_pow_named_cases(kernels: Kernels) -> None:
    nan, inf = math.nan, math.inf
    cases = [
        ((nan, 0.0), 1.0),
        ((nan, -0.0), 1.0),
        ((1.0, nan), 1.0),
        ((1.0, inf), 1.0),
        ((-1.0, inf), 1.0),
        ((-1.0, -inf), 1.0),
        ((-8.0, 1 / 3), nan),
        ((-2.0, 3.0), -8.0),
        ((-2.0, -3.0), -0.125),
        ((-2.0, 2.0), 4.0),
        ((-0.0, 3.0), -0.0),
        ((-0.0, -3.0), -inf),
        ((-0.0, -2.0), inf),
        ((0.0, -1.0), inf),
        ((-0.0, 0.5), 0.0),
        ((-inf, 3.0), -inf),
        ((-inf, -3.0), -0.0),
        ((-inf, 0.5), inf),
        ((inf, -0.5), 0.0),
        ((0.5, inf), 0.0),
        ((0.5, -inf), inf),
        ((2.0, -inf), 0.0),
        ((-2.0, inf), inf),
        ((2.0, 1e10), inf),
        ((-2.0, 1025.0), -inf),
        ((2.0, -1e10), 0.0),
        ((nan, 1.0), nan),
        ((2.0, nan), nan),
    ]
    x = np.array([a for (a, _), _ in cases], kernels.dtype)
    y = np.array([b for (_, b), _ in cases], kernels.dtype)
    expected = np.array([v for _, v in cases], kernels.dtype)
    assert_identical(kernels("pow", x, y), expected, (x, y))


def test_sincos_huge_arguments_stay_bounded(kernels: Kernels) -> None:
    rng = np.random.default_rng(5)
    top = math.log(float(np.finfo(kernels.dtype).max))
    x = np.exp(rng.uniform(math.log(2.0**50), top, 5000)) * rng.choice([-1, 1], 5000)
    x = x.astype(kernels.dtype)
    for name in ("sin", "cos"):
        result = kernels(name, x)
        assert np.all(np.abs(result) <= 1), name


# -- the code ------------------------------------------------------------------------------
def test_loops_vectorize_without_libm_calls(kernels: Kernels) -> None:
    allowed = re.compile(r"llvm\.(fma|fabs|copysign|floor|rint|is\.fpclass|minnum|maxnum)\.")
    optimized = kernels.optimized_ir()
    chunks = {
        re.match(r'[^@]*@"?(\w+)', chunk).group(1): chunk
        for chunk in optimized.split("\ndefine ")[1:]
    }
    assert set(chunks) == {f"kernel_{n}" for n in mathlib.FUNCTIONS}
    for name, body in chunks.items():
        wide = "<8 x double>" in body
        assert wide or "<16 x float>" in body, f"{name} did not vectorize to 512 bits"
        called = re.findall(r'call [^@]*@"?([\w.]+)', body)
        assert called and all(allowed.match(c) for c in called), (name, sorted(set(called)))


def test_functions_are_straight_line_and_reused() -> None:
    module = ir.Module()
    for name in mathlib.FUNCTIONS:
        for ty in (mathlib.F32, mathlib.F64):
            function = mathlib.math_function(module, name, ty)
            assert mathlib.math_function(module, name, ty) is function
            assert function.linkage == "internal"
            assert "alwaysinline" in function.attributes
            assert len(function.blocks) == 1
            assert len(function.args) == (2 if name == "pow" else 1)
            calls = [i for i in function.blocks[0].instructions if isinstance(i, ir.CallInstr)]
            assert all(c.callee.name.startswith("llvm.") for c in calls), name
    assert str(module).count("define internal") == 2 * len(mathlib.FUNCTIONS)


def test_unknown_function_or_type_raises() -> None:
    module = ir.Module()
    with pytest.raises(errors.InternalError, match="lgamma"):
        mathlib.math_function(module, "lgamma", mathlib.F32)
    with pytest.raises(errors.InternalError, match="exp"):
        mathlib.math_function(module, "exp", ir.IntType(32))
