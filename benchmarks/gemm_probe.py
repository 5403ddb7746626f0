"""GEMM probe: GFLOP/s of graphflow's generated float32 GEMM against NumPy's BLAS, one thread.

    python benchmarks/gemm_probe.py                 # the standard shapes
    python benchmarks/gemm_probe.py 1024x1024x1024  # M x K x N shapes of your choice
    python benchmarks/gemm_probe.py --double        # float64 instead

Both sides write into a reused output (NumPy through `np.matmul(a, b, out=c)`,
the same work as `a @ b` without allocating the result). Each shape is
warmed up, then the two contenders run alternately (so a noisy neighbour
slows both alike) until about `--seconds` have passed; the table shows the
median and the best of the repetitions.

The `fma peak` column is the rate of a register-only loop of 512-bit FMAs
(in the GEMM's dtype) measured between the same repetitions: what this core
gives right now, against which a GEMM's rate can be read when the machine
is shared or the core has slowed its clock after long AVX-512 runs. The
header shows the same loop run alone, and which kernel NumPy's OpenBLAS
picked (on this Rocket Lake it is SkylakeX, an AVX-512 kernel).
"""

from __future__ import annotations

import os

# Before NumPy is imported: one BLAS thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402

from graphflow.compiler.jit import get_jit  # noqa: E402
from graphflow.compiler.lowering.gemm import default_tiling, emit_gemm, workspace_elements  # noqa: E402
from graphflow.compiler.lowering.irutil import with_vector_width  # noqa: E402

SHAPES = [
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (256, 784, 512),  # the MLP of WORKLOADS.md, batch 256
    (256, 512, 512),
    (256, 512, 10),
    (1, 784, 512),  # batch 1
]
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


def compile_gemm(
    dtype: ir.Type,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[], None]]:
    """The generated GEMM as `bind(a, b, c)`, which returns `run()` doing c = a @ b.

    The arguments are converted once, in bind: `ndarray.ctypes.data` costs
    about a microsecond, which would swamp the small shapes.
    """
    module = ir.Module("gemm_probe")
    name = f"gemm_probe_{dtype}"
    emit_gemm(module, name, dtype)
    address = get_jit().compile(with_vector_width(str(module)), [name])[name]
    signature = [_I64, _I64, _I64, _PTR, _I64, _I64, _PTR, _I64, _I64, _PTR, _I64, _PTR]
    function = ctypes.CFUNCTYPE(None, *signature)(address)
    np_dtype = np.float32 if isinstance(dtype, ir.FloatType) else np.float64
    workspace = np.empty(workspace_elements(dtype), np_dtype)

    def bind(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Callable[[], None]:
        (m, k), n, size = a.shape, b.shape[1], a.itemsize
        args = (
            m, n, k,
            a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
            b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
            c.ctypes.data, c.strides[0] // size,
            workspace.ctypes.data,
        )  # fmt: skip
        return lambda: function(*args)

    return bind


def openblas_core() -> str:
    """The kernel family NumPy's OpenBLAS chose at run time ("Haswell", "SkylakeX", ...)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                     "scipy_openblas_get_corename", "openblas_get_corename"):  # fmt: skip
            function = getattr(library, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return "unknown"


def compile_peak() -> Callable[[], float]:
    """A loop of 24 independent 512-bit f32 FMA chains on registers; returns its GFLOP/s."""
    f32, i64 = ir.FloatType(), ir.IntType(64)
    vector = ir.VectorType(f32, 16)
    module = ir.Module("gemm_probe_peak")
    fma = ir.Function(module, ir.FunctionType(vector, [vector] * 3), "llvm.fma.v16f32")
    function = ir.Function(module, ir.FunctionType(f32, [i64, f32]), "gemm_probe_peak")
    b = ir.IRBuilder(function.append_basic_block("entry"))
    x = b.insert_element(ir.Constant(vector, None), function.args[1], ir.Constant(i64, 0))
    entry = b.block
    head, body, done = (function.append_basic_block(n) for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(i64, name="i")
    i.add_incoming(ir.Constant(i64, 0), entry)
    chains = []
    for c in range(24):
        chain = b.phi(vector, name=f"chain{c}")
        chain.add_incoming(ir.Constant(vector, [float(c)] * 16), entry)
        chains.append(chain)
    b.cbranch(b.icmp_signed("<", i, function.args[0]), body, done)
    b.position_at_end(body)
    for chain in chains:
        chain.add_incoming(b.call(fma, [chain, x, x]), body)
    i.add_incoming(b.add(i, ir.Constant(i64, 1)), body)
    b.branch(head)
    b.position_at_end(done)
    total = chains[0]
    for chain in chains[1:]:
        total = b.fadd(total, chain)
    b.ret(b.extract_element(total, ir.Constant(i64, 0)))
    address = get_jit().compile(with_vector_width(str(module)), [function.name])[function.name]
    loop = ctypes.CFUNCTYPE(ctypes.c_float, _I64, ctypes.c_float)(address)
    iterations = 100_000

    def measure() -> float:
        start = time.perf_counter()
        loop(iterations, 0.5)
        return 24 * 32 * iterations / (time.perf_counter() - start) / 1e9

    return measure


def probe(
    shape: tuple[int, int, int],
    gemm: Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[], None]],
    peak: Callable[[], float],
    np_dtype: type,
    seconds: float,
) -> dict[str, float]:
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np_dtype)
    b = rng.standard_normal((k, n)).astype(np_dtype)
    c = np.empty((m, n), np_dtype)
    ref = np.empty((m, n), np_dtype)
    ours_run = gemm(a, b, c)
    for _ in range(2):  # warm-up: code, caches, pages
        ours_run()
        np.matmul(a, b, out=ref)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(c - exact).max() / max(np.abs(exact).max(), 1e-30))
    ours, theirs, peaks = [], [], []
    deadline = time.perf_counter() + seconds
    while len(ours) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        ours_run()
        middle = time.perf_counter()
        np.matmul(a, b, out=ref)
        end = time.perf_counter()
        ours.append(middle - start)
        theirs.append(end - middle)
        if len(peaks) < 50:
            peaks.append(peak())
    flop = 2.0 * m * n * k / 1e9
    return {
        "ours": flop / float(np.median(ours)),
        "ours_best": flop / min(ours),
        "numpy": flop / float(np.median(theirs)),
        "numpy_best": flop / min(theirs),
        "peak": float(np.median(peaks)),
        "error": error,
        "reps": len(ours),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", help="M x K x N, e.g. 1024x1024x1024")
    parser.add_argument("--double", action="store_true", help="float64 instead of float32")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per shape")
    args = parser.parse_args()
    shapes = [tuple(int(d) for d in s.split("x")) for s in args.shapes] or SHAPES
    dtype = ir.DoubleType() if args.double else ir.FloatType()
    np_dtype = np.float64 if args.double else np.float32
    gemm, f32_peak = compile_gemm(dtype), compile_peak()
    per_element = 2 if args.double else 1  # a 512-bit FMA holds half as many doubles

    def peak() -> float:
        return f32_peak() / per_element

    alone = max(peak() for _ in range(20))
    t = default_tiling(dtype)
    print(
        f"{dtype} GEMM, one thread; tiling MR={t.mr} NR={t.nr} KC={t.kc} MC={t.mc} NC={t.nc}; "
        f"NumPy's OpenBLAS kernel: {openblas_core()}; FMA peak alone: {alone:.0f} GFLOP/s"
    )
    print("GFLOP/s, median (best) of the repetitions; ratio of the medians")
    print(
        f"{'M x K x N':>16} {'graphflow':>15} {'numpy':>15} {'ratio':>6} "
        f"{'fma peak':>9} {'rel.err':>8}"
    )
    for shape in shapes:
        r = probe(shape, gemm, peak, np_dtype, args.seconds)
        print(
            f"{'x'.join(map(str, shape)):>16} "
            f"{r['ours']:7.1f} ({r['ours_best']:5.1f}) {r['numpy']:7.1f} ({r['numpy_best']:5.1f}) "
            f"{r['ours'] / r['numpy']:6.2f} {r['peak']:9.1f} {r['error']:8.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
