"""The table-driven op test harness: one `Case` per op usage, run in every variant and mode.

A case builds a graph from placeholders and gives an independent NumPy
reference. `run_case` feeds random inputs and compares the Session's result
with the reference in several variants:

- "static": placeholders with the exact shapes;
- "none": placeholders whose dims are all None, fed with the same arrays;
- "noncontig": inputs fed as strided (non-contiguous) views;
- "special": NaN, +Inf and -Inf planted in float inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphflow as gf

VARIANTS = ("static", "none", "noncontig", "special")
# Session configurations every case runs in: the reference interpreter on the
# graph as built, and on the graph the compiler optimized (checks every pass).
MODES = ("interpreted", "interpreted-O1", "interpreted-O2", "compiled")


def session_options(mode: str) -> dict[str, str]:
    name, _, level = mode.partition("-")
    return {"mode": name, "level": level} if level else {"mode": name}


Generator = Callable[[np.random.Generator, tuple[int, ...], np.dtype], np.ndarray]


@dataclasses.dataclass
class Case:
    """One op usage: `build(*placeholders)` in graphflow against `ref(*arrays)` in NumPy.

    Attributes:
      id: "op/what", unique; shown in pytest's test id.
      build: gets one placeholder per input; returns a Tensor or a tuple/list of them.
      ref: gets the fed arrays; returns an array or a tuple/list of them.
      shapes: one shape per input.
      dtypes: one dtype name per input.
      gen: optional input generators, one per input (None entries use the default).
      none_dims: also run with all-None placeholder dims.
      noncontiguous: also run with strided inputs.
      specials: also run with NaN/Inf planted in float inputs.
      rtol, atol: tolerances; by default from the result dtype.
      check_dtype: compare the result dtype with the reference's.
    """

    id: str
    build: Callable[..., Any]
    ref: Callable[..., Any]
    shapes: Sequence[tuple[int, ...]]
    dtypes: Sequence[str]
    gen: Sequence[Generator | None] | None = None
    none_dims: bool = True
    noncontiguous: bool = True
    specials: bool = True
    rtol: float | None = None
    atol: float | None = None
    check_dtype: bool = True

    def __post_init__(self) -> None:
        if len(self.shapes) != len(self.dtypes):
            raise ValueError(f"case {self.id}: one dtype per shape")


def default_input(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 2).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.random(shape) < 0.5


def positive(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Floats in [0.1, 4) or ints in [1, 5]: for domains like log, sqrt, divisors."""
    if dtype.kind == "f":
        return rng.uniform(0.1, 4.0, size=shape).astype(dtype)
    return rng.integers(1, 6, size=shape).astype(dtype)


def ints_in(low: int, high: int) -> Generator:
    """Integers in [low, high): for indices and labels."""

    def gen(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return rng.integers(low, high, size=shape).astype(dtype)

    return gen


def make_inputs(case: Case, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    gens = list(case.gen) if case.gen is not None else [None] * len(case.shapes)
    return [
        (g or default_input)(rng, tuple(shape), np.dtype(dtype))
        for g, shape, dtype in zip(gens, case.shapes, case.dtypes)
    ]


def _plant_specials(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f" or array.size == 0:
        return array
    out = array.copy()
    flat = out.reshape(-1)
    for position, value in zip(
        range(0, flat.size, max(1, flat.size // 3)), (np.nan, np.inf, -np.inf)
    ):
        flat[position] = value
    return out


def _non_contiguous(array: np.ndarray) -> np.ndarray:
    if array.ndim == 0:
        return array
    doubled = np.repeat(array, 2, axis=-1)
    view = doubled[..., ::2]
    assert array.size == 0 or not view.flags.c_contiguous or array.shape[-1] <= 1
    return view


def tolerances(case: Case, dtype: np.dtype) -> tuple[float, float]:
    if dtype == np.float32:
        rtol, atol = 2e-5, 1e-6
    elif dtype == np.float64:
        rtol, atol = 1e-10, 1e-12
    else:
        rtol, atol = 0.0, 0.0
    return (
        case.rtol if case.rtol is not None else rtol,
        case.atol if case.atol is not None else atol,
    )


def assert_matches(case: Case, got: Any, want: Any, label: str) -> None:
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{label}: shape {got.shape}, expected {want.shape}"
    if case.check_dtype:
        assert got.dtype == want.dtype, f"{label}: dtype {got.dtype}, expected {want.dtype}"
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        rtol, atol = tolerances(case, got.dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=label)
    else:
        np.testing.assert_array_equal(got, want, err_msg=label)


def run_case(case: Case, variant: str, mode: str, seed: int = 0) -> None:
    """Builds, runs and checks one case in one variant and session mode."""
    arrays = make_inputs(case, seed)
    if variant == "special":
        arrays = [_plant_specials(a) for a in arrays]
    feeds_arrays = [_non_contiguous(a) for a in arrays] if variant == "noncontig" else arrays
    graph = gf.Graph()
    with graph.as_default():
        placeholders = [
            gf.placeholder(
                dtype, shape=[None] * len(shape) if variant == "none" else shape, name=f"in{i}"
            )
            for i, (shape, dtype) in enumerate(zip(case.shapes, case.dtypes))
        ]
        built = case.build(*placeholders)
        outputs = list(built) if isinstance(built, list | tuple) else [built]
        initializer = gf.global_variables_initializer()
    with np.errstate(all="ignore"):
        expected = case.ref(*[a.copy() for a in arrays])
    expected = list(expected) if isinstance(expected, list | tuple) else [expected]
    assert len(outputs) == len(expected), f"{case.id}: output count"
    with gf.Session(graph=graph, **session_options(mode)) as sess:
        sess.run(initializer)
        results = sess.run(outputs, feed_dict=dict(zip(placeholders, feeds_arrays)))
        if mode == "compiled":
            _assert_compiled(case, sess.cache_info().fallbacks)
    for i, (tensor, got, want) in enumerate(zip(outputs, results, expected)):
        label = f"{case.id} [{variant}, {mode}] output {i}"
        if isinstance(tensor, gf.Operation):
            assert got is None, f"{label}: an Operation's fetch gives None"
            continue
        assert got.dtype == tensor.dtype.np, f"{label}: dtype disagrees with the static dtype"
        assert tensor.shape.is_compatible_with(got.shape), f"{label}: static shape {tensor.shape}"
        assert_matches(case, got, want, label)


def _assert_compiled(case: Case, fallbacks: tuple[str, ...]) -> None:
    """In compiled mode a case runs interpreted only for an op docs/ops.md marks so."""
    from graphflow.compiler.lowering.module import compiled_op_types

    if op_types_of(case) - compiled_op_types():
        return  # an op without a lowering: its fallback is expected
    for reason in fallbacks:
        # Kernels are generated for a known rank (docs/ops.md says so).
        expected = reason.startswith("random ops") or "unknown rank" in reason
        assert expected, f"{case.id} ran interpreted: {reason}"


def variants_of(case: Case) -> list[str]:
    out = ["static"]
    if case.none_dims:
        out.append("none")
    if case.noncontiguous and any(len(s) > 0 and s[-1] > 1 for s in case.shapes):
        out.append("noncontig")
    if case.specials and any(np.dtype(d).kind == "f" for d in case.dtypes):
        out.append("special")
    return out


def op_types_of(case: Case) -> set[str]:
    """The op types a case's graph contains."""
    graph = gf.Graph()
    with graph.as_default():
        placeholders = [gf.placeholder(d, shape=s) for s, d in zip(case.shapes, case.dtypes)]
        case.build(*placeholders)
    return {op.type for op in graph.get_operations()}
