"""Accuracy of graphflow's math library: the max ulp error of each function, as a markdown table.

    python benchmarks/accuracy.py            # about two minutes
    python benchmarks/accuracy.py --quick    # a tenth of the points

Each function runs as a compiled loop kernel (the code the compiler makes)
over a sweep that covers -0.0, denormals, +-Inf, NaN, the overflow and
underflow bounds and large arguments. References:
  - float32: NumPy's float64 function, not rounded (its own error is ~2^-29 of
    a float32 ulp); erf: Python's math.erf in float64.
  - float64: NumPy's np.longdouble (80-bit x87, 64-bit significand: glibc's
    expl, logl, sinl...; its error is about 2^-11 of a float64 ulp); sigmoid
    from expl by the reference formula; erf: mpmath at 40 digits on a sample.
The error is |result - reference| / ulp(reference) in the result's type
(`graphflow.compiler.lowering._testing.ulp_error`). "specials" counts the
inputs among the special values (zeros, denormals, infinities, NaN, overflow
bounds) where the result differs from NumPy's own result in that dtype in
NaN-ness, infinity or the sign of a zero.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import numpy as np

from graphflow.compiler.lowering._testing import Kernels, ulp_error

LD = np.longdouble
rng = np.random.default_rng(0)


# -- input sweeps --------------------------------------------------------------------------
def bit_patterns(dtype: np.dtype, count: int) -> np.ndarray:
    """Evenly spaced bit patterns: every exponent and sign, denormals, inf and NaN included."""
    if dtype == np.float32:
        stride = max(1, 2**32 // count)
        return np.arange(0, 2**32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False).view(np.float64)


def uniform(dtype: np.dtype, lo: float, hi: float, count: int) -> np.ndarray:
    return rng.uniform(lo, hi, count).astype(dtype)


def log_uniform(dtype: np.dtype, lo: float, hi: float, count: int) -> np.ndarray:
    """Both signs, magnitudes log-uniform in [lo, hi]."""
    magnitude = np.exp(rng.uniform(math.log(lo), math.log(hi), count))
    return (magnitude * rng.choice([-1.0, 1.0], count)).astype(dtype)


def specials(dtype: np.dtype) -> np.ndarray:
    info = np.finfo(dtype)
    tiny, smallest = float(info.smallest_normal), float(info.smallest_subnormal)
    values = [0.0, 1.0, 2.0, 0.5, 3.0, -2.0, -1.0, -0.5, math.inf, math.nan]
    values += [tiny, smallest, tiny - smallest, 1e-30, 1e-10, 1e-7, 1e10, 1e30, float(info.max)]
    bounds = [88.72283, 89.0, 103.97, 104.0, 87.33, 709.78, 710.0, 745.13, 746.0, 708.4, 17.0]
    values += bounds
    values += [math.pi, math.pi / 2, 6.0, 9.0, 10.0, 19.0, 20.0, 1e5, 1e15, 1e20, 1e300]
    values = np.array(values + [-v for v in values], dtype=np.float64)
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
        near = np.concatenate([np.nextafter(values, np.inf), np.nextafter(values, -np.inf)])
    return np.concatenate([values, near])


def sweep(dtype: np.dtype, points: int, ranges: list[tuple[float, float]]) -> np.ndarray:
    parts = [specials(dtype), bit_patterns(dtype, points)]
    for lo, hi in ranges:
        parts.append(uniform(dtype, lo, hi, points // 2))
    parts.append(log_uniform(dtype, float(np.finfo(dtype).smallest_subnormal), 1e3, points // 2))
    return np.concatenate(parts)


# -- references ----------------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_math_erf = np.frompyfunc(math.erf, 1, 1)


def _erf64(x: np.ndarray) -> np.ndarray:
    return _math_erf(x).astype(np.float64)


def _erf_mpmath(x: np.ndarray) -> np.ndarray:
    try:
        import mpmath
    except ImportError:  # the table then measures against libm's erf (within an ulp)
        print("mpmath is not installed: float64 erf measured against math.erf", file=sys.stderr)
        return _erf64(x).astype(LD)

    mpmath.mp.dps = 40
    out = np.empty(x.shape, LD)
    for i, v in enumerate(x.tolist()):
        out[i] = math.nan if math.isnan(v) else LD(str(mpmath.erf(mpmath.mpf(v))))
    return out


REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "sin": np.sin,
    "cos": np.cos,
}

# Dense ranges per function (float32, float64), on top of the bit-pattern sweep.
RANGES = {
    "exp": ([(-104, 89), (-1, 1)], [(-746, 710), (-1, 1)]),
    "expm1": ([(-20, 89), (-1, 1)], [(-40, 710), (-1, 1)]),
    "log": ([(0, 10), (0.5, 2)], [(0, 10), (0.5, 2)]),
    "log1p": ([(-1, 10), (-1e-3, 1e-3)], [(-1, 10), (-1e-3, 1e-3)]),
    "tanh": ([(-12, 12), (-1, 1)], [(-25, 25), (-1, 1)]),
    "sigmoid": ([(-110, 110), (-5, 5)], [(-750, 750), (-5, 5)]),
    "erf": ([(-7, 7), (-1.5, 1.5)], [(-7, 7), (-1.5, 1.5)]),
    "sin": ([(-10, 10), (-1e4, 1e4)], [(-10, 10), (-1e6, 1e6)]),
    "cos": ([(-10, 10), (-1e4, 1e4)], [(-10, 10), (-1e6, 1e6)]),
}


def reference(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if x.dtype == np.float32:
            wide = x.astype(np.float64)
            return _erf64(wide) if name == "erf" else REFERENCES[name](wide)
        return _erf_mpmath(x) if name == "erf" else REFERENCES[name](x.astype(LD))


def numpy_result(name: str, x: np.ndarray) -> np.ndarray:
    """NumPy's result in the input's dtype (the semantics the specials must match)."""
    with np.errstate(all="ignore"):
        if name == "erf":
            return _erf64(x.astype(np.float64)).astype(x.dtype)
        return REFERENCES[name](x).astype(x.dtype)


def special_mismatches(result: np.ndarray, expected: np.ndarray) -> int:
    same_nan = np.isnan(result) == np.isnan(expected)
    same_inf = np.where(np.isinf(expected), result == expected, ~np.isinf(result))
    zeros = expected == 0
    same_zero = np.where(zeros, (result == 0) & (np.signbit(result) == np.signbit(expected)), True)
    return int(np.sum(~(same_nan & same_inf & same_zero)))


# -- the table -----------------------------------------------------------------------------
Row = tuple[str, str, str, float, str, int, int]


def measure(
    kernels: Kernels, name: str, x: np.ndarray, domain: str, ref: np.ndarray | None = None
) -> Row:
    result = kernels(name, x)
    ref = reference(name, x) if ref is None else ref
    error = ulp_error(result, ref, x.dtype)
    worst = int(np.argmax(error))
    special = specials(x.dtype)
    mismatches = special_mismatches(kernels(name, special), numpy_result(name, special))
    where = f"{float(x[worst]):.9g}"
    return (name, x.dtype.name, domain, float(error[worst]), where, x.size, mismatches)


def unary_rows(kernels: Kernels, name: str, points: int) -> list[Row]:
    dtype = kernels.dtype
    ranges = RANGES[name][0 if dtype == np.float32 else 1]
    x = sweep(dtype, points, ranges)
    if name == "erf" and dtype == np.float64:
        # mpmath is slow: a sample of the sweep, weighted to where erf is not +-1.
        x = np.concatenate(
            [
                specials(dtype),
                uniform(dtype, -7, 7, points // 40),
                x[rng.integers(0, x.size, points // 40)],
            ]
        )
    if name not in ("sin", "cos"):
        return [measure(kernels, name, x, "all inputs")]
    rows = []
    limit = 2.0**50
    finite = np.isfinite(x)
    for lo, hi in ((0, 2.0**20), (2.0**20, limit)):
        inside = ~finite | ((np.abs(x) >= lo) & (np.abs(x) < hi))
        part = np.concatenate([x[inside], log_uniform(dtype, max(lo, 1.0), hi, points // 4)])
        rows.append(
            measure(
                kernels,
                name,
                part,
                f"|x| < 2^{int(math.log2(hi))}"
                if lo == 0
                else f"2^20 <= |x| < 2^{int(math.log2(hi))}",
            )
        )
    huge = np.concatenate(
        [
            x[finite & (np.abs(x) >= limit)],
            log_uniform(dtype, limit, float(np.finfo(dtype).max), points // 4),
        ]
    )
    result = kernels(name, huge)
    bounded = bool(np.all(np.abs(result) <= 1))
    rows.append(
        (
            name,
            dtype.name,
            "|x| >= 2^50: in [-1, 1], not accurate",
            math.nan,
            "in [-1, 1]" if bounded else "NOT BOUNDED",
            huge.size,
            0,
        )
    )
    return rows


def pow_rows(kernels: Kernels, points: int) -> list[Row]:
    dtype = kernels.dtype
    info = np.finfo(dtype)
    grid = specials(dtype)
    exponents = np.concatenate(
        [
            grid,
            np.array(
                [1 / 3, -1 / 3, 2.5, 0.5, -1.5, 127, 128, -149, 1023, -1074, 2.0**53 + 2, 2.0**60],
                dtype,
            ),
        ]
    )
    sx, sy = (a.ravel() for a in np.meshgrid(grid, exponents))
    n = points // 2
    bases = [
        np.abs(log_uniform(dtype, float(info.smallest_subnormal), float(info.max), n)),
        log_uniform(dtype, 1e-3, 1e3, n),
        uniform(dtype, 0.5, 2, n),
        -np.abs(uniform(dtype, 0, 10, n)),
    ]
    powers = [
        uniform(dtype, -2, 2, n),
        uniform(dtype, -50, 50, n),
        uniform(dtype, -2000, 2000, n),
        np.round(uniform(dtype, -60, 60, n)),
    ]
    x = np.concatenate([sx, *bases])
    y = np.concatenate([sy, *powers])
    with np.errstate(all="ignore"):
        if dtype == np.float32:
            ref = np.power(x.astype(np.float64), y.astype(np.float64))
        else:
            ref = np.power(x.astype(LD), y.astype(LD))
        expected = np.power(sx, sy)
    result = kernels("pow", x, y)
    error = ulp_error(result, ref, dtype)
    worst = int(np.argmax(error))
    mismatches = special_mismatches(kernels("pow", sx, sy), expected)
    where = f"({float(x[worst]):.9g}, {float(y[worst]):.9g})"
    return [("pow", dtype.name, "all inputs", float(error[worst]), where, x.size, mismatches)]


def table(rows: list[Row]) -> str:
    lines = [
        "| function | dtype | domain | max ulp | worst input | points | specials |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for name, dtype, domain, ulps, where, count, mismatches in rows:
        shown = "—" if math.isnan(ulps) else f"{ulps:.2f}"
        specials_text = "exact" if mismatches == 0 else f"{mismatches} differ"
        cells = [name, dtype, domain, shown, where, f"{count:,}", specials_text]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the points")
    args = parser.parse_args(argv)
    points = 400_000 if args.quick else 4_000_000
    rows: list[Row] = []
    for dtype in ("float32", "float64"):
        kernels = Kernels(dtype)
        for name in ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "erf", "sin", "cos"):
            rows.extend(unary_rows(kernels, name, points))
        rows.extend(pow_rows(kernels, points))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
