"""Lowering matmul, alone or with its fused epilogue, onto the generated GEMM.

A kernel loops over the (broadcast) batch dims and calls one GEMM function
per matrix product. The GEMM applies the epilogue (bias, activation, ...)
to each `<lanes x T>` vector of C while it is in registers. Values of the
region other than its last output (the plain product, an intermediate) are
stored by the epilogue as it goes.

The epilogue's body nodes are evaluated once on the whole vector when every
other operand's stride along the columns is known at compile time: 0 (one
value per row, such as a [M, 1] operand: a splat of one load) or 1 (a bias,
a [M, N] operand: one vector load at (row, col0)). The GEMM only asks for a
vector whose columns all lie inside C, so such a load never reads past a
row's end. Where a column stride is known only at run time (a dimension that
may or may not broadcast), the body is evaluated lane by lane, each operand
read at (row, column) through its run-time strides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow.compiler.lowering import gemm
from graphflow.compiler.lowering.irutil import (
    I8,
    I32,
    I64,
    const,
    llvm_type,
    with_vector_width,
)
from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    broadcast_strides,
    load_value,
    loop_nest,
    store_value,
)
from graphflow.compiler.lowering.library import LibraryFunction, body_description, fingerprint
from graphflow.compiler.lowering.mathlib import constant, with_element
from graphflow.compiler.lowering.scalar import ScalarContext
from graphflow.dtypes import DType
from graphflow.graph import Operation, Tensor
from graphflow.ops.fused_ops import FusedBody

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering


def supported(op: Operation) -> bool:
    """Float matmuls of known rank (the GEMM is generated for float32 and float64)."""
    return all(t.dtype.is_floating for t in (*op.inputs, *op.outputs))


def column_stride(operand_dims: list, output_dims: list) -> int | None:
    """An operand's element stride along the output's columns if known now: 0, 1 or None.

    Dims are the lowering's: an int, or a dim slot (equal slots hold equal sizes).
    A last dim of 1 (or none) broadcasts: 0. A known size above 1 is the output's
    column count (broadcasting allows nothing else), and the output's own dim
    slot is its column count: 1 (when that slot holds 1 at run time, the only
    column is 0, where both strides read the same element). Another slot may
    hold 1 or the column count: unknown until run time.
    """
    if not operand_dims or operand_dims[-1] == 1:
        return 0
    last = operand_dims[-1]
    if isinstance(last, int) or last == output_dims[-1]:
        return 1
    return None


def lower_contraction(lowering: _Lowering, op: Operation, body: FusedBody) -> None:
    from graphflow.compiler.lowering.module import _constant, evaluate_nodes

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
    out_dims = lowering.dims(outputs[primary])
    column_strides = [column_stride(lowering.dims(args[i]), out_dims) for i in others]
    whole_vectors = None not in column_strides

    def vector_epilogue(
        builder: ir.IRBuilder,
        extras: list[ir.Value],
        acc: ir.Value,
        row: ir.Value,
        col0: ir.Value,
        lanes: int,
    ) -> ir.Value:
        """The body evaluated once on the `<lanes x T>` vector C[row, col0 : col0 + lanes]."""

        def load_arg(i: int) -> ir.Value:
            slot = others.index(i)
            pointer, rs = extras[3 * slot], extras[3 * slot + 1]
            start = builder.mul(row, rs)
            if column_strides[slot] == 0:
                value = load_value(
                    builder, builder.gep(pointer, [start], inbounds=True), args[i].dtype
                )
                return _splat(builder, value, lanes)
            at = builder.gep(pointer, [builder.add(start, col0)], inbounds=True)
            return _load_vector(builder, at, args[i].dtype, lanes)

        # Constants become splats before the nodes that read them are emitted.
        known: dict[tuple[int, int], ir.Value] = {(anchor, 0): acc}
        for index, node in enumerate(nodes):
            if node.op_type == "Const":
                scalar = _constant(node)
                known[(index, 0)] = constant(with_element(acc.type, scalar.type), scalar.constant)
        values = evaluate_nodes(
            ScalarContext(builder), body, load_arg, arg_dtypes, epilogue_nodes, known=known
        )
        side = 3 * len(others)
        for k, (_, node, out) in enumerate(body.outputs):
            if k == primary:
                continue
            pointer, ldc = extras[side], extras[side + 1]
            side += 2
            at = builder.gep(pointer, [builder.add(builder.mul(row, ldc), col0)], inbounds=True)
            _store_vector(builder, values[(node, out)], at, outputs[k].dtype)
        _, node, out = body.outputs[primary]
        return values[(node, out)]

    def lane_epilogue(
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
        column_strides if has_epilogue else None,
        [t.dtype for t in args],
        [t.dtype for t in outputs],
        (ia, ib, primary),
    )
    symbol = f"graphflow_gemm_{digest[:24]}"

    def emit() -> str:
        module = ir.Module(name=symbol)
        epilogue = vector_epilogue if whole_vectors else lane_epilogue
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
    out_dims = kb.dims(out_dims)
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


def _splat(builder: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """`<lanes x T>` with `value` in every lane."""
    vector = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(I32, 0))
    if lanes == 1:
        return one
    mask = ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)


def _load_vector(builder: ir.IRBuilder, pointer: ir.Value, dtype: DType, lanes: int) -> ir.Value:
    """`lanes` consecutive elements from `pointer` (element-aligned), bools as `<lanes x i1>`."""
    vector = ir.VectorType(pointer.type.pointee, lanes)
    value = builder.load(builder.bitcast(pointer, vector.as_pointer()), align=dtype.itemsize)
    if dtype.is_bool:
        return builder.icmp_unsigned("!=", value, constant(vector, 0))
    return value


def _store_vector(builder: ir.IRBuilder, value: ir.Value, pointer: ir.Value, dtype: DType) -> None:
    """Stores a vector to consecutive elements at `pointer` (element-aligned; bools as bytes)."""
    if dtype.is_bool:
        value = builder.zext(value, with_element(value.type, I8))
    builder.store(value, builder.bitcast(pointer, value.type.as_pointer()), align=dtype.itemsize)
