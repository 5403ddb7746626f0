"""The GEMM generator against NumPy: shapes, strides (transposed views), epilogues, blocking."""

from __future__ import annotations

import ctypes
import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from llvmlite import ir

from graphflow.compiler.jit import get_jit
from graphflow.compiler.lowering.gemm import Tiling, emit_gemm, workspace_elements

F32, F64 = ir.FloatType(), ir.DoubleType()
NUMPY = {"float": np.float32, "double": np.float64}
# Tiny blocks, so that small shapes cross every block boundary (several K blocks, M and N
# blocks, balanced block sizes) and exercise the "add to C" path and its epilogue.
SMALL = {
    "float": Tiling(mr=6, nr=32, lanes=16, kc=16, mc=12, nc=64),
    "double": Tiling(mr=6, nr=16, lanes=8, kc=16, mc=12, nc=32),
}
LANES_SEEN: set[int] = set()


def scale_bias_relu(
    b: ir.IRBuilder,
    extras: list[ir.Value],
    acc: ir.Value,
    row: ir.Value,
    col0: ir.Value,
    lanes: int,
) -> ir.Value:
    """relu(acc * scale[row] + bias[col0 : col0 + lanes])."""
    LANES_SEEN.add(lanes)
    bias_pointer, scale_pointer = extras
    vector = acc.type
    element = vector.element
    size = 4 if str(element) == "float" else 8
    bias = b.load(b.bitcast(b.gep(bias_pointer, [col0]), vector.as_pointer()), align=size)
    scale = b.load(b.gep(scale_pointer, [row]))
    one = b.insert_element(ir.Constant(vector, ir.Undefined), scale, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    splat = b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)
    x = b.fadd(b.fmul(acc, splat), bias)
    zero = ir.Constant(vector, None)
    return b.select(b.fcmp_ordered(">", x, zero), x, zero)


@dataclasses.dataclass
class Gemm:
    call: Callable[..., None]
    dtype: type
    workspace: np.ndarray
    fused: bool


# (fused epilogue?, blocking); the plain GEMM with small blocks would add compile time only.
VARIANTS = [(False, "default"), (True, "default"), (True, "small")]


@pytest.fixture(scope="module")
def gemms() -> dict[tuple[str, bool, str], Gemm]:
    """Every variant in one module (one compilation): dtype x VARIANTS."""
    module = ir.Module("test_gemm")
    specs = {}
    for dtype in (F32, F64):
        for fused, blocks in VARIANTS:
            name = f"test_gemm_{dtype}_{'fused' if fused else 'plain'}_{blocks}"
            tiling = SMALL[str(dtype)] if blocks == "small" else None
            extras = [dtype.as_pointer()] * 2 if fused else []
            emit_gemm(
                module,
                name,
                dtype,
                scale_bias_relu if fused else None,
                extras,
                tiling=tiling,
            )
            specs[(str(dtype), fused, blocks)] = (name, tiling, len(extras))
    addresses = get_jit().compile(str(module), [name for name, _, _ in specs.values()])
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    out = {}
    for key, (name, tiling, n_extras) in specs.items():
        dtype = F32 if key[0] == "float" else F64
        signature = [i64, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, i64, ptr]
        call = ctypes.CFUNCTYPE(None, *signature, *[ptr] * n_extras)(addresses[name])
        workspace = np.empty(workspace_elements(dtype, tiling), NUMPY[key[0]])
        out[key] = Gemm(call, NUMPY[key[0]], workspace, key[1])
    return out


def run(gemm: Gemm, a: np.ndarray, b: np.ndarray, bias=None, scale=None) -> np.ndarray:
    """Calls the GEMM on views a and b; C is a view into a wider buffer, whose margin must
    stay untouched."""
    m, k = a.shape
    n = b.shape[1]
    size = a.itemsize
    sentinel = 12345.0
    wide = np.full((m, n + 3), sentinel, gemm.dtype)
    c = wide[:, :n]
    gemm.workspace.fill(np.nan)  # a read of workspace that packing did not write shows up
    extras = [bias.ctypes.data, scale.ctypes.data] if gemm.fused else []
    gemm.call(
        m, n, k,
        a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
        b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
        c.ctypes.data, wide.strides[0] // size,
        gemm.workspace.ctypes.data,
        *extras,
    )  # fmt: skip
    assert np.all(wide[:, n:] == sentinel), "wrote outside C"
    return c.copy()


def operand(rng: np.random.Generator, shape: tuple[int, int], layout: str, dtype) -> np.ndarray:
    """A (rows, cols) view with the given memory layout (the data is the same either way)."""
    rows, cols = shape
    if layout == "row":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "transposed":  # column-major: row stride 1
        return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype).T).T
    if layout == "strided":  # every other column of a wider array
        return rng.standard_normal((rows, 2 * cols)).astype(dtype)[:, ::2]
    raise ValueError(layout)


SHAPES = [
    (1, 1, 1),
    (0, 5, 3),
    (4, 0, 3),
    (4, 5, 0),
    (0, 0, 0),
    (7, 13, 5),
    (37, 41, 29),
    (12, 64, 32),  # whole tiles in both dtypes
    (24, 96, 48),
    (200, 300, 150),
    (20, 10, 50),  # N below one vector: the one-vector kernel
    (1, 150, 37),  # one row: strips, whole vectors and single columns straight from B
    (1, 100, 3),
    (1, 300, 20),  # 16-vector strips too
    (1, 20, 0),
    (1, 0, 4),
]
LAYOUTS = [("row", "row"), ("transposed", "row"), ("row", "transposed"), ("strided", "strided")]


def check(gemm: Gemm, m: int, n: int, k: int, layouts: tuple[str, str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = operand(rng, (m, k), layouts[0], gemm.dtype)
    b = operand(rng, (k, n), layouts[1], gemm.dtype)
    bias = rng.standard_normal(n).astype(gemm.dtype)
    scale = rng.standard_normal(m).astype(gemm.dtype)
    got = run(gemm, a, b, bias, scale)
    want = a.astype(np.float64) @ b.astype(np.float64)
    if gemm.fused:
        want = np.maximum(want * scale[:, None] + bias[None, :], 0.0)
    eps = np.finfo(gemm.dtype).eps
    magnitude = max(1.0, np.abs(a).max(initial=0) * np.abs(b).max(initial=0))
    tolerance = 4 * eps * max(k, 1) * magnitude * max(1.0, np.abs(scale).max(initial=0))
    assert got.shape == (m, n)
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", ["float", "double"])
@pytest.mark.parametrize(
    ("fused", "blocks"), VARIANTS, ids=[f"{'fused' if f else 'plain'}-{b}" for f, b in VARIANTS]
)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm_matches_numpy(gemms, dtype: str, fused: bool, blocks: str, shape) -> None:
    gemm = gemms[(dtype, fused, blocks)]
    for i, layouts in enumerate(LAYOUTS):
        check(gemm, *shape, layouts, seed=hash((shape, i)) % 2**32)


@pytest.mark.parametrize("dtype", ["float", "double"])
def test_k_zero_gives_the_epilogue_of_zero(gemms, dtype: str) -> None:
    gemm = gemms[(dtype, True, "default")]
    bias = np.array([-1.0, 2.0, 0.5], gemm.dtype)
    scale = np.ones(2, gemm.dtype)
    a = np.empty((2, 0), gemm.dtype)
    b = np.empty((0, 3), gemm.dtype)
    got = run(gemm, a, b, bias, scale)
    np.testing.assert_array_equal(got, np.maximum(np.broadcast_to(bias, (2, 3)), 0))


def test_k_blocks_accumulate_in_c(gemms) -> None:
    """K = 784 with kc = 16: 49 K blocks; the epilogue applies once, to the final sum."""
    check(gemms[("float", True, "small")], 50, 70, 784, ("row", "row"), seed=3)


def test_right_edge_calls_the_epilogue_per_element(gemms) -> None:
    """Emission fact: partial vectors at column N are finished a lane at a time, so an
    epilogue that loads bias[col0 : col0 + lanes] never reads past column N - 1."""
    assert {1, 8, 16} <= LANES_SEEN


def test_micro_kernel_uses_512_bit_fmas() -> None:
    module = ir.Module("test_gemm_ir")
    emit_gemm(module, "test_gemm_ir_f32", F32)
    optimized = get_jit().optimized_ir(str(module))
    assert "@llvm.fma.v16f32" in optimized


def test_unsupported_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="float and double"):
        emit_gemm(ir.Module(), "bad", ir.IntType(32))
