"""Small helpers that hide LLVM's basic-block bookkeeping (numba's cgutils style).

with for_range(builder, n, "row") as i:
    ...   # the loop body, i is an i64 from 0 to n - 1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llvmlite import ir

from graphflow.dtypes import DType

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
F32 = ir.FloatType()
F64 = ir.DoubleType()
VOID = ir.VoidType()
I8P = I8.as_pointer()

_TYPES = {"float32": F32, "float64": F64, "int32": I32, "int64": I64, "bool": I8}


def llvm_type(dtype: DType) -> ir.Type:
    """The LLVM type of a buffer element (bools are bytes in memory)."""
    return _TYPES[dtype.name]


def const(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


@contextlib.contextmanager
def for_range(
    builder: ir.IRBuilder, count: ir.Value, name: str = "i", start: ir.Value | None = None
) -> Iterator[ir.Value]:
    """Emits `for (i = start; i < count; ++i) { body }`; yields i (an i64)."""
    start = start if start is not None else const(0)
    function = builder.function
    before = builder.block
    header = function.append_basic_block(f"{name}.head")
    body = function.append_basic_block(f"{name}.body")
    done = function.append_basic_block(f"{name}.done")
    builder.branch(header)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(start, before)
    builder.cbranch(builder.icmp_signed("<", index, count), body, done)
    builder.position_at_end(body)
    yield index
    following = builder.add(index, const(1), name=f"{name}.next", flags=["nsw", "nuw"])
    index.add_incoming(following, builder.block)
    builder.branch(header)
    builder.position_at_end(done)


@contextlib.contextmanager
def if_then(builder: ir.IRBuilder, condition: ir.Value, name: str = "if") -> Iterator[None]:
    """Emits `if (condition) { body }`."""
    function = builder.function
    then = function.append_basic_block(f"{name}.then")
    done = function.append_basic_block(f"{name}.end")
    builder.cbranch(condition, then, done)
    builder.position_at_end(then)
    yield
    if not builder.block.is_terminated:  # the body may have returned (a failed check)
        builder.branch(done)
    builder.position_at_end(done)


def element_pointer(
    builder: ir.IRBuilder, base: ir.Value, index: ir.Value, name: str = ""
) -> ir.Value:
    return builder.gep(base, [index], inbounds=True, name=name)


def product(builder: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
    out: ir.Value = const(1)
    for v in values:
        out = builder.mul(out, v)
    return out


def with_vector_width(text: str) -> str:
    """Asks LLVM for 512-bit vectors in every defined function (llvmlite cannot set it)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("define ") and line.rstrip().endswith(")"):
            line = line.rstrip() + " #0"
        lines.append(line)
    lines.append('attributes #0 = { "prefer-vector-width"="512" "min-legal-vector-width"="512" }')
    return "\n".join(lines) + "\n"
