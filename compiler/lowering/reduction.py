"""Lowering a reduction and its fused neighbours (see compiler/passes/fuse.py).

A reduction group has a domain D (the reduction's input shape) and a
reduced domain R (its output shape). Its body nodes are:

- the prologue: D-shaped nodes the reduction reads (computed in pass A);
- the anchor: the reduction itself, accumulated into a scratch buffer of R;
- the R-epilogue: R-shaped nodes after the anchor (pass B, once per R element);
- the D-epilogue: D-shaped nodes after the anchor, which read R values by
  broadcasting, as the graph does (pass C, recomputing prologue values).

Pass A walks D in row-major order and accumulates into R through strides
that are 0 on the reduced axes, so one loop nest serves every set of axes:
with the reduced axes innermost the accumulator stays in a register and the
loop vectorizes as a reduction (sums and products may reassociate; max and
min propagate NaN like NumPy).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow import errors
from graphflow.compiler.lowering.irutil import I1, const, llvm_type
from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    load_value,
    loop_nest,
    store_value,
)
from graphflow.compiler.lowering.scalar import ScalarContext
from graphflow.dtypes import DType
from graphflow.graph import Operation
from graphflow.ops.fused_ops import FusedBody
from graphflow.ops.registry import REDUCTION, get_op_def

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering

_FAST = ("reassoc", "contract")  # no nnan/ninf: NaN and Inf must survive


def _identity(op_type: str, dtype: DType) -> ir.Constant:
    if dtype.is_bool:
        return ir.Constant(I1, 1 if op_type == "All" else 0)
    ty = llvm_type(dtype)
    if op_type in ("Sum", "Mean"):
        return ir.Constant(ty, 0.0 if dtype.is_floating else 0)
    if op_type == "Prod":
        return ir.Constant(ty, 1.0 if dtype.is_floating else 1)
    if dtype.is_floating:
        return ir.Constant(ty, -math.inf if op_type == "Max" else math.inf)
    bits = ty.width
    return ir.Constant(ty, -(2 ** (bits - 1)) if op_type == "Max" else 2 ** (bits - 1) - 1)


def _combine(
    ctx: ScalarContext, op_type: str, dtype: DType, acc: ir.Value, x: ir.Value
) -> ir.Value:
    b = ctx.builder
    if op_type in ("Sum", "Mean"):
        return b.fadd(acc, x, flags=_FAST) if dtype.is_floating else b.add(acc, x)
    if op_type == "Prod":
        return b.fmul(acc, x, flags=_FAST) if dtype.is_floating else b.mul(acc, x)
    if op_type == "Any":
        return b.or_(acc, x)
    if op_type == "All":
        return b.and_(acc, x)
    if dtype.is_floating:
        name = "llvm.maximum" if op_type == "Max" else "llvm.minimum"
        return b.call(ctx.intrinsic(name, acc.type, 2), [acc, x])
    predicate = ">=" if op_type == "Max" else "<="
    return b.select(b.icmp_signed(predicate, acc, x), acc, x)


def _ancestors(body: FusedBody, index: int) -> set[int]:
    out: set[int] = set()
    stack = [index]
    while stack:
        for kind, i, _ in body.nodes[stack.pop()].inputs:
            if kind == "node" and i not in out:
                out.add(i)
                stack.append(i)
    return out


def _descendants(body: FusedBody, index: int) -> set[int]:
    out: set[int] = set()
    for n, node in enumerate(body.nodes):
        if any(kind == "node" and (i == index or i in out) for kind, i, _ in node.inputs):
            out.add(n)
    return out


def lower_reduction(lowering: _Lowering, op: Operation, body: FusedBody) -> None:
    from graphflow.compiler.lowering.module import evaluate_nodes

    nodes = body.nodes
    anchor = next(i for i, n in enumerate(nodes) if get_op_def(n.op_type).kind == REDUCTION)
    node = nodes[anchor]
    reduce_type = node.op_type
    axes = set(node.attrs["axis"])
    kind, src, src_out = node.inputs[0]
    d_dims_src = (
        lowering.dims(op.inputs[src]) if kind == "arg" else _node_dims(lowering, op, src, src_out)
    )
    in_dtype = op.inputs[src].dtype if kind == "arg" else nodes[src].outputs[src_out][0]
    out_dtype = node.outputs[0][0]
    r_static = node.outputs[0][1]
    downstream = _descendants(body, anchor)
    prologue = _ancestors(body, anchor)
    d_static = (op.inputs[src].shape if kind == "arg" else nodes[src].outputs[src_out][1]).as_list()

    def r_shaped(n: int) -> bool:
        shape = nodes[n].outputs[0][1]
        return shape == r_static and len(shape) == len(r_static)

    # Side nodes neither feed nor follow the anchor (a D-shaped output that
    # only reads the prologue, say). Every group member is D- or R-shaped, so
    # a side node is computed in pass A (D) or pass B (R).
    side = set(range(len(nodes))) - prologue - downstream - {anchor}
    side_r = {n for n in side if r_shaped(n) and nodes[n].outputs[0][1].as_list() != d_static}
    r_nodes = sorted(n for n in downstream | side_r if r_shaped(n))
    e_nodes = sorted(downstream - set(r_nodes))
    prologue |= side - side_r

    args = list(op.inputs)
    outputs = list(op.outputs)
    out_refs = {(i, j): k for k, (_, i, j) in enumerate(body.outputs)}
    scratch_nodes = [anchor, *r_nodes]
    step = lowering.step[op]
    dtypes = (
        [t.dtype for t in args]
        + [t.dtype for t in outputs]
        + [nodes[n].outputs[0][0] for n in scratch_nodes]
    )
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), dtypes)
    b = kb.builder
    ctx = ScalarContext(b)
    arg_dtypes = [t.dtype for t in args]
    n_args, n_out = len(args), len(outputs)
    scratch_ptr = {n: kb.pointers[n_args + n_out + k] for k, n in enumerate(scratch_nodes)}
    d_dims = kb.dims(d_dims_src)
    r_dims = kb.dims(_node_dims(lowering, op, anchor, 0))
    acc_type = I1 if out_dtype.is_bool else llvm_type(out_dtype)

    # The accumulator seen from D: R with the reduced axes kept as 1s.
    acc_dims = [const(1) if a in axes else d for a, d in enumerate(d_dims)]

    def arg_operands(domain: list[ir.Value]) -> list[Operand]:
        # An arg of higher rank than the domain is never read in that pass
        # (an R-pass reads only R-shaped values): it gets a placeholder operand.
        return [
            kb.operand(i, lowering.dims(t), t.dtype)
            if (t.shape.rank or 0) <= len(domain)
            else Operand(kb.pointers[i], [], t.dtype)
            for i, t in enumerate(args)
        ]

    # Pass 0: the accumulator starts at the identity.
    identity = _identity(reduce_type, out_dtype)
    loop_nest(
        kb,
        r_dims,
        [Operand(scratch_ptr[anchor], r_dims, out_dtype)],
        lambda bb, ptrs, idx: store_value(bb, identity, ptrs[0], out_dtype),
        "init",
    )

    # Pass A: the prologue, accumulated into R.
    prologue_outputs = [(k, i) for (i, j), k in out_refs.items() if i in prologue]
    operands_a = [*arg_operands(d_dims), Operand(scratch_ptr[anchor], acc_dims, out_dtype)]
    operands_a += [
        Operand(kb.pointers[n_args + k], d_dims, outputs[k].dtype) for k, _ in prologue_outputs
    ]

    def pass_a(bb: ir.IRBuilder, ptrs: list[ir.Value], idx: list[ir.Value]) -> None:
        values = evaluate_nodes(
            ctx,
            body,
            lambda i: load_value(bb, ptrs[i], arg_dtypes[i]),
            arg_dtypes,
            prologue | {i for _, i in prologue_outputs},
        )
        x = load_value(bb, ptrs[src], arg_dtypes[src]) if kind == "arg" else values[(src, src_out)]
        if x.type != acc_type and in_dtype != out_dtype:
            raise errors.InternalError("reduction input and output dtypes differ")
        acc_pointer = ptrs[n_args]
        acc = load_value(bb, acc_pointer, out_dtype)
        store_value(bb, _combine(ctx, reduce_type, out_dtype, acc, x), acc_pointer, out_dtype)
        for n, (k, i) in enumerate(prologue_outputs):
            store_value(bb, values[(i, 0)], ptrs[n_args + 1 + n], outputs[k].dtype)

    loop_nest(kb, d_dims, operands_a, pass_a, "red")

    # Pass B: finish the anchor (mean), then the R-epilogue.
    count = const(1)
    for a in axes:
        count = b.mul(count, d_dims[a])
    r_outputs = [(k, i) for (i, j), k in out_refs.items() if i == anchor or i in r_nodes]
    operands_b = arg_operands(r_dims) + [
        Operand(scratch_ptr[n], r_dims, nodes[n].outputs[0][0]) for n in scratch_nodes
    ]
    operands_b += [Operand(kb.pointers[n_args + k], r_dims, outputs[k].dtype) for k, _ in r_outputs]

    def pass_b(bb: ir.IRBuilder, ptrs: list[ir.Value], idx: list[ir.Value]) -> None:
        value = load_value(bb, ptrs[n_args], out_dtype)
        if reduce_type == "Mean":
            value = _mean(bb, value, count, out_dtype)
            store_value(bb, value, ptrs[n_args], out_dtype)
        values = evaluate_nodes(
            ctx,
            body,
            lambda i: load_value(bb, ptrs[i], arg_dtypes[i]),
            arg_dtypes,
            r_nodes,
            known={(anchor, 0): value},
        )
        for k, n in enumerate(scratch_nodes[1:], start=1):
            store_value(bb, values[(n, 0)], ptrs[n_args + k], nodes[n].outputs[0][0])
        for m, (k, i) in enumerate(r_outputs):
            store_value(bb, values[(i, 0)], ptrs[n_args + len(scratch_nodes) + m], outputs[k].dtype)

    loop_nest(kb, r_dims, operands_b, pass_b, "fin")

    # Pass C: the D-epilogue, reading R values by broadcasting.
    e_outputs = [(k, i) for (i, j), k in out_refs.items() if i in e_nodes]
    if e_outputs:
        operands_c = arg_operands(d_dims) + [
            Operand(scratch_ptr[n], kb.dims(_node_dims(lowering, op, n, 0)), nodes[n].outputs[0][0])
            for n in scratch_nodes
        ]
        operands_c += [
            Operand(kb.pointers[n_args + k], d_dims, outputs[k].dtype) for k, _ in e_outputs
        ]

        def pass_c(bb: ir.IRBuilder, ptrs: list[ir.Value], idx: list[ir.Value]) -> None:
            known = {
                (n, 0): load_value(bb, ptrs[n_args + k], nodes[n].outputs[0][0])
                for k, n in enumerate(scratch_nodes)
            }
            values = evaluate_nodes(
                ctx,
                body,
                lambda i: load_value(bb, ptrs[i], arg_dtypes[i]),
                arg_dtypes,
                e_nodes,
                known=known,
            )
            for m, (k, i) in enumerate(e_outputs):
                store_value(
                    bb, values[(i, 0)], ptrs[n_args + len(scratch_nodes) + m], outputs[k].dtype
                )

        loop_nest(kb, d_dims, operands_c, pass_c, "epi")

    function = kb.finish()
    scratch = [
        lowering.scratch_pointer((op, n, 0), nodes[n].outputs[0][0], step) for n in scratch_nodes
    ]
    lowering.call_kernel(function, args + outputs + scratch)


def _mean(b: ir.IRBuilder, total: ir.Value, count: ir.Value, dtype: DType) -> ir.Value:
    if dtype.is_floating:
        return b.fdiv(total, b.sitofp(count, total.type))
    safe = b.select(b.icmp_signed("==", count, const(0)), const(1), count)
    quotient = b.sdiv(total, b.trunc(safe, total.type) if total.type.width < 64 else safe)
    return b.select(b.icmp_signed("==", count, const(0)), ir.Constant(total.type, 0), quotient)


def _node_dims(lowering: _Lowering, op: Operation, node: int, output: int) -> list:
    shape = (
        op.attrs["body"].nodes[node].outputs[output][1]
        if op.type == "Fused"
        else (op.outputs[output].shape)
    )
    out: list = []
    for axis, d in enumerate(shape.as_list()):
        if d is not None:
            out.append(d)
        elif op.type == "Fused":
            out.append(("slot", lowering.planner.dim_slot((op, node, output), axis)))
        else:
            out.append(("slot", lowering.planner.dim_slot(op.outputs[output], axis)))
    return out
