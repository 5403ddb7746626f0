"""Integer matmul: a plain loop nest, with NumPy's wrapping integer arithmetic.

The generated GEMM is for floats. Integer products are rare in graphs
(index arithmetic, tests), so they get a simple kernel: per batch element,
`C[i, :] = sum_k A[i, k] * B[k, :]` with the column loop innermost, which
LLVM vectorizes when B's rows are contiguous. Overflow wraps, as NumPy's
integer matmul does (no `nsw`: wrapping is defined behaviour here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow.compiler.lowering.irutil import const, for_range, llvm_type
from graphflow.compiler.lowering.kernels import KernelBuilder, Operand, broadcast_strides, loop_nest
from graphflow.graph import Operation

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering


def supported(op: Operation) -> bool:
    """A MatMul of integer operands (float ones go to the GEMM)."""
    return op.type == "MatMul" and all(t.dtype.is_integer for t in (*op.inputs, *op.outputs))


def lower_int_matmul(lowering: _Lowering, op: Operation) -> None:
    a, b_in = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [a.dtype, b_in.dtype, y.dtype])
    bld = kb.builder
    element = llvm_type(y.dtype)
    out_dims = kb.dims(lowering.dims(y))
    a_dims = kb.dims(lowering.dims(a))
    b_dims = kb.dims(lowering.dims(b_in))
    transpose_a, transpose_b = op.attrs["transpose_a"], op.attrs["transpose_b"]
    m, n = out_dims[-2], out_dims[-1]
    depth = a_dims[-2] if transpose_a else a_dims[-1]
    a_rs, a_cs = (const(1), a_dims[-1]) if transpose_a else (a_dims[-1], const(1))
    b_rs, b_cs = (const(1), b_dims[-1]) if transpose_b else (b_dims[-1], const(1))
    batch = out_dims[:-2]
    operands = []
    for pointer, dims, dtype in (
        (kb.pointers[0], a_dims, a.dtype),
        (kb.pointers[1], b_dims, b_in.dtype),
        (kb.pointers[2], out_dims, y.dtype),
    ):
        strides = broadcast_strides(bld, Operand(pointer, dims, dtype), out_dims)
        operands.append(Operand(pointer, dims, dtype, strides=strides[: len(batch)]))

    def product(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        pa, pb, pc = pointers
        zero = ir.Constant(element, 0)
        with for_range(b, m, "i") as i:
            row = b.gep(pc, [b.mul(i, n)], inbounds=True)
            with for_range(b, n, "zero") as j:
                b.store(zero, b.gep(row, [j], inbounds=True))
            with for_range(b, depth, "k") as k:
                scale = b.load(b.gep(pa, [b.add(b.mul(i, a_rs), b.mul(k, a_cs))], inbounds=True))
                b_row = b.gep(pb, [b.mul(k, b_rs)], inbounds=True)
                with for_range(b, n, "j") as j:
                    at = b.gep(row, [j], inbounds=True)
                    value = b.load(b.gep(b_row, [b.mul(j, b_cs)], inbounds=True))
                    b.store(b.add(b.load(at), b.mul(scale, value)), at)

    loop_nest(kb, batch, operands, product, "batch")
    lowering.call_kernel(kb.finish(), [a, b_in, y])
