"""Elementwise lowering and math library on whole vectors: lane for lane what the scalar code
computes (NaN, Inf, -0.0, denormals, integer edges), and the GEMM epilogue evaluated on vectors.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

import graphflow as gf
from graphflow import dtypes
from graphflow.compiler.jit import get_jit
from graphflow.compiler.lowering import mathlib, scalar
from graphflow.compiler.lowering.irutil import I8, I64, for_range, llvm_type, with_vector_width
from graphflow.compiler.lowering.module import lower
from graphflow.compiler.pipeline import optimize
from graphflow.ops.registry import InferenceError, get_op_def

# -- IR functions over arrays: `f(in0, ..., out, n)`, a scalar or a vector at a time -----------
Body = Callable[[ir.IRBuilder, list[ir.Value]], ir.Value]


def memory_type(dtype: dtypes.DType) -> ir.Type:
    return I8 if dtype.is_bool else llvm_type(dtype)


def add_function(
    module: ir.Module,
    name: str,
    in_dtypes: list[dtypes.DType],
    out_dtype: dtypes.DType,
    lanes: int | None,
    body: Body,
) -> None:
    """`void name(T0* in0, ..., U* out, i64 n)`: out = body(inputs), a `<lanes x T>` vector at
    a time (n a multiple of lanes), or an element at a time when `lanes` is None. Bools are
    bytes in memory and i1 in registers, as in the lowering."""
    pointers = [memory_type(d).as_pointer() for d in (*in_dtypes, out_dtype)]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [*pointers, I64]), name)
    *inputs, out, n = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    width = lanes or 1
    with for_range(b, b.sdiv(n, ir.Constant(I64, width)), "chunk") as chunk:
        start = b.mul(chunk, ir.Constant(I64, width))

        def at(pointer: ir.Value, dtype: dtypes.DType) -> ir.Value:
            element = b.gep(pointer, [start], inbounds=True)
            if lanes is None:
                return element
            return b.bitcast(element, ir.VectorType(memory_type(dtype), lanes).as_pointer())

        values = []
        for pointer, dtype in zip(inputs, in_dtypes):
            value = b.load(at(pointer, dtype), align=dtype.itemsize)
            if dtype.is_bool:
                value = b.icmp_unsigned("!=", value, mathlib.constant(value.type, 0))
            values.append(value)
        result = body(b, values)
        if out_dtype.is_bool:
            result = b.zext(result, mathlib.with_element(result.type, I8))
        b.store(result, at(out, out_dtype), align=out_dtype.itemsize)
    b.ret_void()


class Compiled:
    """The functions of one module, callable on NumPy arrays."""

    def __init__(self, module: ir.Module, signatures: dict[str, list[dtypes.DType]]) -> None:
        self.ir = with_vector_width(str(module))
        addresses = get_jit().compile(self.ir, list(signatures))
        self._functions = {
            name: ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(types), ctypes.c_int64)(
                addresses[name]
            )
            for name, types in signatures.items()
        }
        self._out = {name: types[-1] for name, types in signatures.items()}

    def __call__(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        out = np.empty(arrays[0].shape, self._out[name].np)
        arrays = tuple(np.ascontiguousarray(a) for a in arrays)
        self._functions[name](*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out


def lanes_for(dtype: dtypes.DType) -> int:
    """The GEMM's vector width for 4-byte elements, half of it for 8-byte ones."""
    return 64 // max(dtype.itemsize, 4)


# -- inputs: special values crossed with each other, then random ones --------------------------
COUNT = 4096  # a multiple of every lane count used


def special_values(dtype: dtypes.DType) -> np.ndarray:
    if dtype.is_floating:
        info = np.finfo(dtype.np)
        values = [0.0, 1.0, 0.5, 2.0, 3.0, 1.5, 2.5, 6.0, 7.25, 100.0, 1e20, 40.0]
        values += [float(info.max), float(info.smallest_normal), float(info.smallest_subnormal)]
        values += [3 * float(info.smallest_subnormal), float(info.smallest_normal) / 3]
        values += [np.inf, np.nan]
        return np.array(values + [-v for v in values], dtype.np)
    if dtype.is_integer:
        info = np.iinfo(dtype.np)
        values = [0, 1, -1, 2, -2, 3, -3, 7, -8, 31, 63, 64, 100, -100]
        return np.array([*values, info.min, info.max, info.min + 1, info.max - 1], dtype.np)
    return np.array([False, True])


def random_values(rng: np.random.Generator, dtype: dtypes.DType, count: int) -> np.ndarray:
    """Half ordinary values, half arbitrary bit patterns (every exponent, denormals, NaNs)."""
    if dtype.is_bool:
        return rng.random(count) < 0.5
    half = count // 2
    if dtype.is_floating:
        ordinary = (rng.standard_normal(half) * 3).astype(dtype.np)
    else:
        ordinary = rng.integers(-20, 21, half).astype(dtype.np)
    bits = rng.integers(0, 256, (count - half) * dtype.itemsize, dtype=np.uint8)
    return np.concatenate([ordinary, bits.view(dtype.np)])


def inputs(seed: int, in_dtypes: list[dtypes.DType]) -> list[np.ndarray]:
    """COUNT elements per input: every combination of special values (as far as they fit),
    then random values."""
    rng = np.random.default_rng(seed)
    specials = [special_values(d) for d in in_dtypes]
    crossed = [g.reshape(-1) for g in np.meshgrid(*specials, indexing="ij")]
    if crossed[0].size > COUNT // 2:  # three inputs: a random half of the combinations
        chosen = rng.choice(crossed[0].size, COUNT // 2, replace=False)
        crossed = [c[chosen] for c in crossed]
    return [
        np.concatenate([c, random_values(rng, d, COUNT - c.size)]).astype(d.np)
        for c, d in zip(crossed, in_dtypes)
    ]


def assert_same(result: np.ndarray, expected: np.ndarray, context: object) -> None:
    """Equal values, NaN where NaN, the same sign on zeros (bitwise but for NaN payloads)."""
    if result.dtype.kind == "f":
        same = (result == expected) & (np.signbit(result) == np.signbit(expected))
        same |= np.isnan(result) & np.isnan(expected)
    else:
        same = result == expected
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (context, bad.size, [(result[i], expected[i]) for i in bad[:5]])


# -- the elementwise ops of emit_scalar --------------------------------------------------------
ATTRS: dict[str, list[dict]] = {
    "LeakyRelu": [{"alpha": 0.2}],
    "Gelu": [{"approximate": True}, {"approximate": False}],
    "Silu": [{"beta": 1.5}],
}
ARITY = {"SelectV2": 3, "ClipByValue": 3}
LIKE_DTYPE = ("Cast", "ZerosLike", "OnesLike")  # ops with a dtype attribute


def op_cases() -> list[tuple[str, dict, list[dtypes.DType], dtypes.DType]]:
    """(op type, attrs, input dtypes, output dtype) for every dtype the op accepts."""
    ops = sorted(set(scalar._BINARY) | set(scalar._UNARY) | scalar._SPECIAL)
    cases = []
    for op_type in ops:
        for attrs in ATTRS.get(op_type, [{}]):
            for dtype in dtypes.ALL_DTYPES:
                arity = ARITY.get(op_type, 2 if op_type in scalar._BINARY else 1)
                in_dtypes = [dtype] * arity
                if op_type == "SelectV2":
                    in_dtypes[0] = dtypes.bool_
                targets = [None]
                if op_type == "Cast":
                    targets = list(dtypes.ALL_DTYPES)
                elif op_type in ("ZerosLike", "OnesLike"):
                    targets = [None, dtypes.float32, dtypes.int64, dtypes.bool_]
                for target in targets:
                    full = {**attrs, "dtype": target} if op_type in LIKE_DTYPE else attrs
                    if op_type == "Fill":
                        out = dtype
                    else:
                        try:
                            (out,) = get_op_def(op_type).dtype(in_dtypes, full)
                        except InferenceError:
                            continue
                    cases.append((op_type, full, in_dtypes, out))
    return cases


CASES = op_cases()


def case_id(case: tuple) -> str:
    op_type, attrs, in_dtypes, out = case
    extra = "".join(f"-{k}={v}" for k, v in attrs.items() if k != "dtype")
    return f"{op_type}{extra}-{'.'.join(d.name for d in in_dtypes)}-{out.name}"


def op_body(op_type: str, attrs: dict, in_dtypes: list[dtypes.DType], out: dtypes.DType) -> Body:
    def body(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
        ctx = scalar.ScalarContext(b)
        return scalar.emit_scalar(ctx, op_type, attrs, values, in_dtypes, out)

    return body


@pytest.fixture(scope="module")
def op_functions() -> Compiled:
    """For each case: the scalar path, and the body on `<lanes x T>` and on `<1 x T>`."""
    module = ir.Module("test_vector_scalar_ops")
    signatures = {}
    for index, case in enumerate(CASES):
        op_type, attrs, in_dtypes, out = case
        body = op_body(op_type, attrs, in_dtypes, out)
        for variant, lanes in (("scalar", None), ("vector", lanes_for(in_dtypes[-1])), ("one", 1)):
            name = f"{variant}_{index}"
            add_function(module, name, in_dtypes, out, lanes, body)
            signatures[name] = [*in_dtypes, out]
    return Compiled(module, signatures)


def test_every_elementwise_op_has_cases() -> None:
    covered = {case[0] for case in CASES}
    assert covered == set(scalar._BINARY) | set(scalar._UNARY) | scalar._SPECIAL
    assert len(CASES) > 100


def numpy_reference(case: tuple, arrays: list[np.ndarray]) -> np.ndarray:
    op_type, attrs, _, out = case
    if op_type == "Fill":  # the body's Fill is its scalar value, broadcast by the kernel
        return arrays[0]
    with np.errstate(all="ignore"):
        return np.asarray(get_op_def(op_type).reference(*arrays, **attrs)).astype(out.np)


def assert_close_to_numpy(result: np.ndarray, expected: np.ndarray, case: tuple) -> None:
    """Exact for ints and bools and for NaN/Inf/zero results; floats within the math library's
    few ulps (denormal results within a few denormal steps)."""
    if result.dtype.kind != "f":
        assert_same(result, expected, case)
        return
    info = np.finfo(result.dtype)
    special = ~np.isfinite(expected)
    assert_same(result[special], expected[special], case)
    # The sign of a zero is left out: llvm.maximum orders -0.0 below +0.0, NumPy's
    # maximum does not (a known difference of the scalar path, not of vectors).
    zero = expected == 0
    assert np.all(result[zero] == 0), case
    exact = special | zero
    rtol = 1e-5 if result.dtype == np.float32 else 1e-12
    atol = 16 * float(info.smallest_subnormal)
    if case[0] == "Gelu" and case[1]["approximate"]:
        # 1 + tanh(...) cancels for x < 0: both sides err by about |x| eps there.
        atol = 16 * float(info.eps)
    np.testing.assert_allclose(
        result[~exact], expected[~exact], rtol=rtol, atol=atol, err_msg=str(case)
    )


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case_id(c) for c in CASES])
def test_vector_op_matches_scalar_and_numpy(op_functions: Compiled, index: int) -> None:
    case = CASES[index]
    op_type, _, in_dtypes, _ = case
    arrays = inputs(index, in_dtypes)
    expected = op_functions(f"scalar_{index}", *arrays)
    assert_same(op_functions(f"vector_{index}", *arrays), expected, case)
    assert_same(op_functions(f"one_{index}", *arrays), expected, case)
    keep = np.ones(COUNT, bool)
    if op_type in ("Sin", "Cos"):  # beyond 2^50 only bounded (test_mathlib.py)
        keep = ~(np.abs(arrays[0]) >= 2.0**50)
    assert_close_to_numpy(expected[keep], numpy_reference(case, [a[keep] for a in arrays]), case)


def test_vector_intrinsics_are_declared_by_vector_names(op_functions: Compiled) -> None:
    for name in ("llvm.fabs.v16f32", "llvm.floor.v8f64", "llvm.fptosi.sat.v16i32.v16f32"):
        assert f'@"{name}"' in op_functions.ir
    assert '@"gf.ipow.v16i32"' in op_functions.ir and '@"gf.exp.v1f64"' in op_functions.ir


# -- the math library -----------------------------------------------------------------------
def math_body(name: str) -> Body:
    def body(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
        return b.call(mathlib.math_function(b.module, name, values[0].type), values)

    return body


@pytest.fixture(scope="module")
def math_functions() -> Compiled:
    module = ir.Module("test_vector_scalar_math")
    signatures = {}
    for dtype in dtypes.FLOAT_DTYPES:
        for name, (arity, _) in mathlib.FUNCTIONS.items():
            for variant, lanes in (("scalar", None), ("vector", lanes_for(dtype)), ("one", 1)):
                full = f"{variant}_{name}_{dtype.name}"
                add_function(module, full, [dtype] * arity, dtype, lanes, math_body(name))
                signatures[full] = [dtype] * (arity + 1)
    return Compiled(module, signatures)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(mathlib.FUNCTIONS))
def test_vector_math_function_matches_scalar(math_functions: Compiled, name: str, dtype) -> None:
    dt = dtypes.as_dtype(dtype)
    arity = mathlib.FUNCTIONS[name][0]
    arrays = inputs(len(name), [dt] * arity)
    expected = math_functions(f"scalar_{name}_{dtype}", *arrays)
    for variant in ("vector", "one"):
        assert_same(math_functions(f"{variant}_{name}_{dtype}", *arrays), expected, variant)


def test_vector_math_function_names_and_types() -> None:
    module = ir.Module()
    vector = ir.VectorType(mathlib.F32, 16)
    function = mathlib.math_function(module, "exp", vector)
    assert function.name == "gf.exp.v16f32"
    assert function.function_type.return_type == vector
    assert mathlib.math_function(module, "exp", mathlib.F32).name == "gf.exp.f32"
    with pytest.raises(gf.errors.InternalError):
        mathlib.math_function(module, "exp", ir.VectorType(ir.IntType(32), 4))


# -- the GEMM epilogue on vectors -------------------------------------------------------------
def dense(m: int, k: int, n: int, dtype: type, kind: str, seed: int):
    """A graph of matmul + epilogue and its feed; `kind` names the epilogue."""
    rng = np.random.default_rng(seed)
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(dtype, [None, k])
        w = gf.constant((rng.standard_normal((k, n)) / np.sqrt(max(k, 1))).astype(dtype))
        bias = gf.constant(rng.standard_normal(n).astype(dtype))
        feed = {x: rng.standard_normal((m, k)).astype(dtype)}
        product = gf.matmul(x, w)
        if kind == "bias_relu":
            fetches = [gf.nn.relu(product + bias)]
        elif kind == "bias_gelu":
            fetches = [gf.nn.gelu(product + bias, approximate=True)]
        elif kind == "row_scale":  # a [M, 1] operand: one value per row
            scale = gf.placeholder(dtype, [None, 1])
            feed[scale] = rng.standard_normal((m, 1)).astype(dtype)
            fetches = [gf.nn.sigmoid(product * scale + bias)]
        elif kind == "side_output":  # the pre-activation is fetched too
            hidden = product + bias
            fetches = [gf.tanh(hidden) * 2.0, hidden]
        elif kind == "full_operand":  # an [M, N] operand read a row segment at a time
            other = gf.placeholder(dtype, [None, n])
            feed[other] = rng.standard_normal((m, n)).astype(dtype)
            fetches = [gf.maximum(product - other, gf.abs(bias))]
        else:
            raise ValueError(kind)
    return g, fetches, feed


KINDS = ("bias_relu", "bias_gelu", "row_scale", "side_output", "full_operand")
SHAPES = [(19, 37, 45), (1, 5, 33), (70, 64, 17), (3, 0, 20)]  # (M, K, N): edges, M = 1, K = 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_vector_epilogue_matches_interpreter(kind: str, dtype: type) -> None:
    for seed, (m, k, n) in enumerate(SHAPES):
        g, fetches, feed = dense(m, k, n, dtype, kind, seed)
        with gf.Session(graph=g, mode="interpreted") as sess:
            want = sess.run(fetches, feed)
        with gf.Session(graph=g, mode="compiled") as sess:
            got = sess.run(fetches, feed)
            assert sess.cache_info().fallbacks == ()
        tolerance = 2e-5 if dtype == np.float32 else 1e-12
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=kind)


def test_operand_broadcast_known_only_at_run_time_is_read_lane_by_lane() -> None:
    """A [None, None] operand may be [M, 1] or [M, N]: the per-lane path reads both right."""
    rng = np.random.default_rng(5)
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(gf.float32, [None, 9])
        other = gf.placeholder(gf.float32, [None, None])
        w = gf.constant(rng.standard_normal((9, 21)).astype(np.float32))
        y = gf.nn.relu(gf.matmul(x, w) + other)
    (library,) = lower(optimize([y], [x, other]).program).libraries
    assert "extractelement" in library.emit()  # this operand takes the per-lane path
    features = rng.standard_normal((13, 9)).astype(np.float32)
    for shape in ((13, 1), (13, 21), (1, 21)):
        feed = {x: features, other: rng.standard_normal(shape).astype(np.float32)}
        with gf.Session(graph=g, mode="compiled") as sess:
            got = sess.run(y, feed)
            assert sess.cache_info().fallbacks == ()
        want = np.maximum(features @ w.op.attrs["value"] + feed[other], 0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def gemm_ir(kind: str) -> str:
    """The light-pipeline IR of the GEMM library function of a [?, 784] x [784, 512] layer."""
    _, fetches, feed = dense(2, 784, 512, np.float32, kind, 0)
    (placeholder,) = [t for t in feed if t.shape.as_list()[0] is None]
    (library,) = lower(optimize(fetches, [placeholder]).program).libraries
    module = llvm.parse_assembly(library.emit())
    get_jit().optimize(module, "light")
    return str(module)


def test_bias_relu_epilogue_has_no_per_lane_code() -> None:
    text = gemm_ir("bias_relu")
    assert len(re.findall(r"= extractelement ", text)) == 0
    # relu is NumPy's maximum(x, 0): a compare and a select, on whole vectors
    # (the <1 x float> right-edge columns become scalars after instcombine).
    assert len(re.findall(r"select <16 x i1> ", text)) >= 12  # a 6 x 32 tile
    assert re.search(r"load <16 x float>, ptr %\S+, align 4", text)  # the bias, unaligned
