"""Lowering matmul, alone or with its fused epilogue, onto the generated GEMM.

A kernel loops over the (broadcast) batch dims and calls one GEMM function
per matrix product. The GEMM applies the epilogue (bias, activation, ...)
to each vector of C while it is in registers: the epilogue's body nodes are
evaluated lane by lane on the accumulator's elements, reading their other
operands at (row, column) through broadcast strides. Values of the region
other than its last output (the plain product, an intermediate) are stored
by the epilogue as it goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow.compiler.lowering import gemm
from graphflow.compiler.lowering.irutil import I64, const, llvm_type, with_vector_width
from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    broadcast_strides,
    load_value,
    loop_nest,
    store_value,
)
from graphflow.compiler.lowering.library import LibraryFunction, body_description, fingerprint
from graphflow.compiler.lowering.scalar import ScalarContext
from graphflow.graph import Operation, Tensor
from graphflow.ops.fused_ops import FusedBody

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering


def supported(op: Operation) -> bool:
    """Float matmuls of known rank (the GEMM is generated for float32 and float64)."""
    return all(t.dtype.is_floating for t in (*op.inputs, *op.outputs))


def lower_contraction(lowering: _Lowering, op: Operation, body: FusedBody) -> None:
    from graphflow.compiler.lowering.module import evaluate_nodes

    nodes = body.nodes
    anchor = next(i for i, n in enumerate(nodes) if n.op_type == "MatMul")
    matmul = nodes[anchor]
    (_, ia, _), (_, ib, _) = matmul.inputs  # a region never fuses into a matmul's inputs
    args: list[Tensor] = list(op.inputs)
    a, b = args[ia], args[ib]
    outputs = list(op.outputs)
    primary = len(outputs) - 1
    others = [i for i in range(len(args)) if i not in (ia, ib)]
    dtype = outputs[primary].dtype
    element = llvm_type(dtype)

    # The GEMM of this region, with an epilogue computing the other body nodes.
    extra_types: list[ir.Type] = []
    for _ in others:
        extra_types += [element.as_pointer(), I64, I64]
    for k in range(len(outputs)):
        if k != primary:
            extra_types += [llvm_type(outputs[k].dtype).as_pointer(), I64]
    epilogue_nodes = set(range(len(nodes))) - {anchor}
    arg_dtypes = [t.dtype for t in args]

    def epilogue(
        builder: ir.IRBuilder,
        extras: list[ir.Value],
        acc: ir.Value,
        row: ir.Value,
        col0: ir.Value,
        lanes: int,
    ) -> ir.Value:
        ctx = ScalarContext(builder)
        result = acc
        for lane in range(lanes):
            col = builder.add(col0, const(lane))
            value = builder.extract_element(acc, ir.Constant(ir.IntType(32), lane))

            def load_arg(i: int, col: ir.Value = col) -> ir.Value:
                slot = others.index(i) * 3
                pointer, rs, cs = extras[slot], extras[slot + 1], extras[slot + 2]
                offset = builder.add(builder.mul(row, rs), builder.mul(col, cs))
                return load_value(
                    builder, builder.gep(pointer, [offset], inbounds=True), args[i].dtype
                )

            values = evaluate_nodes(
                ctx, body, load_arg, arg_dtypes, epilogue_nodes, known={(anchor, 0): value}
            )
            side = 3 * len(others)
            for k, (_, node, out) in enumerate(body.outputs):
                if k == primary:
                    continue
                pointer, ldc = extras[side], extras[side + 1]
                side += 2
                at = builder.gep(pointer, [builder.add(builder.mul(row, ldc), col)], inbounds=True)
                store_value(builder, values[(node, out)], at, outputs[k].dtype)
            _, node, out = body.outputs[primary]
            result = builder.insert_element(
                result, values[(node, out)], ir.Constant(ir.IntType(32), lane)
            )
        return result

    # The GEMM is a library function: declared here, emitted (or loaded from
    # the cache) once per process for every region with the same code.
    has_epilogue = len(nodes) > 1
    digest = fingerprint(
        "gemm",
        str(element),
        repr(gemm.default_tiling(element)),
        [str(t) for t in extra_types],
        body_description(body) if has_epilogue else None,
        [t.dtype for t in args],
        [t.dtype for t in outputs],
        (ia, ib, primary),
    )
    symbol = f"graphflow_gemm_{digest[:24]}"

    def emit() -> str:
        module = ir.Module(name=symbol)
        gemm.emit_gemm(module, symbol, element, epilogue if has_epilogue else None, extra_types)
        return with_vector_width(str(module))

    gemm_fn = lowering.library_function(
        # Written vectorized already: the light pipeline gives the same speed.
        LibraryFunction(symbol, emit, pipeline="light"),
        gemm.function_type(element, extra_types),
    )

    # The kernel: a loop over the batch, one GEMM call per product.
    kb = KernelBuilder(
        lowering.module,
        lowering.kernel_name(op),
        [t.dtype for t in args] + [t.dtype for t in outputs] + [dtype],
    )
    bld = kb.builder
    out_dims = kb.dims(lowering.dims(outputs[primary]))
    a_dims = kb.dims(lowering.dims(a))
    b_dims = kb.dims(lowering.dims(b))
    transpose_a, transpose_b = matmul.attrs["transpose_a"], matmul.attrs["transpose_b"]
    m, n = out_dims[-2], out_dims[-1]
    k_dim = a_dims[-2] if transpose_a else a_dims[-1]
    a_rs, a_cs = (const(1), a_dims[-1]) if transpose_a else (a_dims[-1], const(1))
    b_rs, b_cs = (const(1), b_dims[-1]) if transpose_b else (b_dims[-1], const(1))
    batch = out_dims[:-2]

    def strides(index: int, dims: list[ir.Value], t: Tensor) -> list[ir.Value]:
        """Element strides of buffer `index` over the output's dims (0 where it broadcasts)."""
        return broadcast_strides(bld, Operand(kb.pointers[index], dims, t.dtype), out_dims)

    arg_dims = [kb.dims(lowering.dims(t)) for t in args]
    operands = [
        Operand(
            kb.pointers[i], arg_dims[i], t.dtype, strides=strides(i, arg_dims[i], t)[: len(batch)]
        )
        for i, t in enumerate(args)
    ]
    out_operands = [
        Operand(
            kb.pointers[len(args) + k],
            out_dims,
            t.dtype,
            strides=strides(len(args) + k, out_dims, t)[: len(batch)],
        )
        for k, t in enumerate(outputs)
    ]
    tile_strides = {i: strides(i, arg_dims[i], args[i])[-2:] for i in others}
    workspace = kb.pointers[-1]

    def product(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        extras: list[ir.Value] = []
        for i in others:
            extras += [pointers[i], *tile_strides[i]]
        for k in range(len(outputs)):
            if k != primary:
                extras += [pointers[len(args) + k], n]
        b.call(
            gemm_fn,
            [
                m,
                n,
                k_dim,
                pointers[ia],
                a_rs,
                a_cs,
                pointers[ib],
                b_rs,
                b_cs,
                pointers[len(args) + primary],
                n,
                workspace,
                *extras,
            ],
        )

    loop_nest(kb, batch, operands + out_operands, product, "batch")
    pack_bytes = gemm.workspace_elements(element) * dtype.itemsize
    lowering.call_kernel(
        kb.finish(),
        [*args, *outputs, lowering.fixed_scratch((op, "gemm"), pack_bytes, lowering.step[op])],
    )
