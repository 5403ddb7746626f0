"""Loop kernels around the math library, JIT-compiled and callable on NumPy arrays.

For tests and benchmarks of `mathlib` only: each kernel is
`void kernel_<name>(T* noalias x[, T* noalias y], T* noalias out, i64 n)` with
`out[i] = f(x[i][, y[i]])`, compiled the way the lowering compiles its kernels
(512-bit vectors preferred), so the code measured is the code the compiler makes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

import numpy as np
from llvmlite import ir

from graphflow.compiler.jit import get_jit
from graphflow.compiler.lowering import mathlib

I64 = ir.IntType(64)
TYPES = {"float32": mathlib.F32, "float64": mathlib.F64}

Body = Callable[[ir.IRBuilder, list[ir.Value]], ir.Value]


def add_kernel(module: ir.Module, name: str, ty: ir.Type, arity: int, body: Body) -> None:
    """Appends `kernel_<name>`, the loop `out[i] = body(inputs[i])`, to `module`."""
    pointer = ty.as_pointer()
    function_type = ir.FunctionType(ir.VoidType(), [pointer] * (arity + 1) + [I64])
    function = ir.Function(module, function_type, f"kernel_{name}")
    for argument in function.args[:-1]:
        argument.add_attribute("noalias")
    *inputs, out, n = function.args
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64, name="i")
    i.add_incoming(ir.Constant(I64, 0), entry)
    values = [b.load(b.gep(p, [i], inbounds=True)) for p in inputs]
    b.store(body(b, values), b.gep(out, [i], inbounds=True))
    following = b.add(i, ir.Constant(I64, 1), flags=["nsw", "nuw"])
    i.add_incoming(following, loop)
    b.cbranch(b.icmp_signed("<", following, n), loop, done)
    b.position_at_end(done)
    b.ret_void()


def math_body(name: str, ty: ir.Type) -> Body:
    def body(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
        return b.call(mathlib.math_function(b.module, name, ty), values)

    return body


def module_text(module: ir.Module) -> str:
    """The IR text with every kernel marked "prefer-vector-width"="512"."""
    lines = [
        line + " #0" if line.startswith("define") and '@"kernel_' in line else line
        for line in str(module).splitlines()
    ]
    lines.append('attributes #0 = { "prefer-vector-width"="512" }')
    return "\n".join(lines) + "\n"


class Kernels:
    """Compiled kernels of one dtype; `kernels("exp", x)` returns a new array."""

    def __init__(self, dtype: str, bodies: dict[str, tuple[int, Body]] | None = None) -> None:
        self.dtype = np.dtype(dtype)
        ty = TYPES[dtype]
        if bodies is None:
            bodies = {n: (a, math_body(n, ty)) for n, (a, _) in mathlib.FUNCTIONS.items()}
        module = ir.Module(name=f"mathlib_kernels_{dtype}")
        for name, (arity, body) in bodies.items():
            add_kernel(module, name, ty, arity, body)
        self.ir = module_text(module)
        addresses = get_jit().compile(self.ir, [f"kernel_{n}" for n in bodies])
        self._functions = {}
        for name, (arity, _) in bodies.items():
            signature = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (arity + 1), ctypes.c_int64)
            self._functions[name] = (arity, signature(addresses[f"kernel_{name}"]))

    def __call__(self, name: str, *args: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        arity, function = self._functions[name]
        if len(args) != arity:
            raise TypeError(f"{name} takes {arity} arrays")
        arrays: Sequence[np.ndarray] = [
            np.ascontiguousarray(a, dtype=self.dtype) for a in np.broadcast_arrays(*args)
        ]
        if out is None:
            out = np.empty(arrays[0].shape, self.dtype)
        function(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out

    def optimized_ir(self) -> str:
        return get_jit().optimized_ir(self.ir)


def ulp_error(result: np.ndarray, reference: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """|result - reference| in ulps of `dtype` at the reference, elementwise.

    `reference` is in a wider type (float64 for float32 results, longdouble for
    float64 ones). Both NaN counts as 0 and one NaN as inf; where the reference
    rounds to an infinity or the result is one, anything but equality is inf.
    The ulp of a denormal is the smallest denormal.
    """
    info = np.finfo(dtype)
    wide = reference.dtype
    _, exponent = np.frexp(np.abs(reference))
    exponent = np.maximum(exponent.astype(np.int64) - 1, info.minexp)
    ulp = np.ldexp(np.ones_like(reference), (exponent - info.nmant).astype(np.int32))
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(result.astype(wide) - reference) / ulp
        rounded = reference.astype(dtype)
    nan_result, nan_reference = np.isnan(result), np.isnan(reference)
    error = np.where(nan_result & nan_reference, 0.0, error)
    error = np.where(nan_result ^ nan_reference, np.inf, error)
    infinite = (np.isinf(rounded) | np.isinf(result)) & ~nan_result & ~nan_reference
    return np.where(infinite, np.where(result == rounded, 0.0, np.inf), error)
