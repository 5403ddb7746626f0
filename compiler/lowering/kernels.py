"""Kernel emitters: loop nests over a domain, with broadcast reads, reductions and GEMMs.

Every kernel is its own LLVM function taking one `noalias` pointer per
buffer and the slots array (dims unknown at compile time, buffer offsets),
so LLVM knows the buffers do not overlap and vectorizes the inner loops.
Loops run over i64 indices with GEP addressing; the innermost loop walks
the last axis, where a buffer's stride is 1 (contiguous) or 0 (broadcast).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from llvmlite import ir

from graphflow.compiler.lowering.irutil import I1, I8, I64, VOID, const, for_range, llvm_type
from graphflow.dtypes import DType

DimSource = int | tuple[str, int]  # a known dim, or ("slot", index)


@dataclasses.dataclass
class Operand:
    """A buffer as a kernel sees it: a typed pointer, its dims, its dtype.

    `strides`, when given, are the element strides along each axis of the
    loop domain (e.g. permuted for a transpose) instead of broadcasting.
    """

    pointer: ir.Value
    dims: list[ir.Value]
    dtype: DType
    strides: list[ir.Value] | None = None


class KernelBuilder:
    """Creates one kernel function: `void name(T0* noalias, ..., i64* noalias slots)`.

    A kernel that can find bad data (an index out of range) is built with
    `checked=True`: it returns i32 (0 on success) and takes one more
    argument, an i64* where `fail(value)` records the offending value.
    """

    def __init__(
        self, module: ir.Module, name: str, dtypes: Sequence[DType], checked: bool = False
    ) -> None:
        types = [llvm_type(d).as_pointer() for d in dtypes] + [I64.as_pointer()]
        if checked:
            types.append(I64.as_pointer())
        result = ir.IntType(32) if checked else VOID
        self.function = ir.Function(module, ir.FunctionType(result, types), name)
        self.function.linkage = "internal"
        for arg in self.function.args:
            arg.add_attribute("noalias")
        self.builder = ir.IRBuilder(self.function.append_basic_block("entry"))
        self.checked = checked
        count = len(dtypes)
        self.pointers = list(self.function.args[:count])
        self.slots = self.function.args[count]
        self.error = self.function.args[count + 1] if checked else None
        self.module = module

    def dims(self, sources: Sequence[DimSource]) -> list[ir.Value]:
        out = []
        for s in sources:
            if isinstance(s, int):
                out.append(const(s))
            else:
                pointer = self.builder.gep(self.slots, [const(s[1])], inbounds=True)
                out.append(self.builder.load(pointer, name=f"dim{s[1]}"))
        return out

    def operand(self, index: int, dims: Sequence[DimSource], dtype: DType) -> Operand:
        return Operand(self.pointers[index], self.dims(dims), dtype)

    def fail(self, value: ir.Value, *details: ir.Value) -> None:
        """Records `value` and up to two `details` (as i64) and returns failure.

        For checked kernels. The words land in the workspace's first three
        words, which the error message reads as {value}, {position} and
        {limit}. Call it inside `irutil.if_then`: it ends the current block.
        """
        if len(details) > 2:
            raise ValueError("a checked kernel reports at most three words")
        b = self.builder
        for word, datum in enumerate((value, *details)):
            if datum.type != I64:
                datum = b.sext(datum, I64)
            pointer = self.error if word == 0 else b.gep(self.error, [const(word)], inbounds=True)
            b.store(datum, pointer)
        b.ret(ir.Constant(ir.IntType(32), 1))

    def finish(self) -> ir.Function:
        if self.checked:
            self.builder.ret(ir.Constant(ir.IntType(32), 0))
        else:
            self.builder.ret_void()
        return self.function


def load_value(b: ir.IRBuilder, pointer: ir.Value, dtype: DType) -> ir.Value:
    value = b.load(pointer)
    return b.icmp_unsigned("!=", value, ir.Constant(I8, 0)) if dtype.is_bool else value


def store_value(b: ir.IRBuilder, value: ir.Value, pointer: ir.Value, dtype: DType) -> None:
    if dtype.is_bool and value.type == I1:
        value = b.zext(value, I8)
    b.store(value, pointer)


def broadcast_strides(b: ir.IRBuilder, operand: Operand, domain: list[ir.Value]) -> list[ir.Value]:
    """Element strides of `operand` over `domain` (right-aligned; 0 where it broadcasts)."""
    rank = len(domain)
    offset = rank - len(operand.dims)
    strides: list[ir.Value] = [const(0)] * rank
    running: ir.Value = const(1)
    for axis in range(len(operand.dims) - 1, -1, -1):
        dim = operand.dims[axis]
        if isinstance(dim, ir.Constant) and dim.constant == 1:
            stride: ir.Value = const(0)
        else:
            is_one = b.icmp_signed("==", dim, const(1))
            stride = b.select(is_one, const(0), running)
        strides[offset + axis] = stride
        running = b.mul(running, dim)
    return strides


def _static_inner(operand: Operand, domain: list[ir.Value]) -> int | None:
    """The stride of `operand` along the domain's last axis if known now: 0, 1, or None."""
    if operand.strides is not None:
        last = operand.strides[-1] if operand.strides else const(0)
        return last.constant if isinstance(last, ir.Constant) and last.constant in (0, 1) else None
    if not domain:
        return 0
    if not operand.dims:
        return 0
    dim = operand.dims[-1]
    last = domain[-1]
    if isinstance(dim, ir.Constant):
        if dim.constant == 1 and not (isinstance(last, ir.Constant) and last.constant == 1):
            return 0
        if isinstance(last, ir.Constant) and dim.constant == last.constant:
            return 1
    if dim is last:
        return 1
    return None


def row_major_strides(b: ir.IRBuilder, dims: Sequence[ir.Value]) -> list[ir.Value]:
    """The element strides of a C-contiguous buffer of `dims`."""
    strides: list[ir.Value] = []
    running: ir.Value = const(1)
    for dim in reversed(dims):
        strides.append(running)
        running = b.mul(running, dim)
    return strides[::-1]


def loop_nest(
    kb: KernelBuilder,
    domain: list[ir.Value],
    operands: Sequence[Operand],
    body: Callable[[ir.IRBuilder, list[ir.Value], list[ir.Value]], None],
    name: str = "l",
) -> None:
    """Runs `body(builder, element pointers of operands, index per axis)` over the domain.

    Each operand is read (or written) through its broadcast strides. The
    innermost loop is emitted twice when a stride is only known at run time:
    a fast copy assuming contiguous inner strides, taken when a run-time
    check confirms it, and a general one.
    """
    b = kb.builder
    strides = [
        op.strides if op.strides is not None else broadcast_strides(b, op, domain)
        for op in operands
    ]
    rank = len(domain)
    if rank == 0:
        body(b, [op.pointer for op in operands], [])
        return
    inner_known = [_static_inner(op, domain) for op in operands]

    def emit_level(axis: int, offsets: list[ir.Value], indices: list[ir.Value]) -> None:
        if axis < rank - 1:
            with for_range(b, domain[axis], f"{name}{axis}") as i:
                emit_level(
                    axis + 1,
                    [b.add(o, b.mul(i, s[axis])) for o, s in zip(offsets, strides)],
                    [*indices, i],
                )
            return
        bases = [b.gep(op.pointer, [o], inbounds=True) for op, o in zip(operands, offsets)]
        unknown = [k for k, known in enumerate(inner_known) if known is None]

        def inner(assume_contiguous: bool, suffix: str) -> None:
            with for_range(b, domain[axis], f"{name}{axis}{suffix}") as j:
                pointers = []
                for k, (base, s) in enumerate(zip(bases, strides)):
                    known = inner_known[k]
                    if known == 0:
                        pointers.append(base)
                    elif known == 1 or (known is None and assume_contiguous):
                        pointers.append(b.gep(base, [j], inbounds=True))
                    else:
                        pointers.append(b.gep(base, [b.mul(j, s[axis])], inbounds=True))
                body(b, pointers, [*indices, j])

        if not unknown:
            inner(True, "")
            return
        contiguous = const(1)
        ok: ir.Value = ir.Constant(I1, 1)
        for k in unknown:
            ok = b.and_(ok, b.icmp_signed("==", strides[k][axis], contiguous))
        with b.if_else(ok) as (then, otherwise):
            with then:
                inner(True, "c")
            with otherwise:
                inner(False, "s")

    emit_level(0, [const(0)] * len(operands), [])
